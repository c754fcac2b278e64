"""In a real browser: someone applies, uploads a document, and staff approve them."""

import pytest
from playwright.sync_api import expect

from tests.agents.test_onboarding import PNG
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser]


def test_apply_upload_and_get_approved(new_page, staff, tmp_path):
    applicant = new_page()
    applicant.goto("/apply/")
    applicant.get_by_label("Full name").fill("Bea Browser")
    applicant.get_by_label("E-mail address").fill("bea@example.org")
    applicant.get_by_label("Password").fill("a-long-secret-phrase")
    applicant.get_by_label("Which describes you best?").select_option("power_user")
    applicant.get_by_label("Languages you can support customers in").fill("en, fr")
    applicant.get_by_label("Payments").check()
    applicant.get_by_label("Country").fill("FR")
    applicant.get_by_label("Time zone").select_option("Europe/Paris")
    applicant.get_by_role("button", name="Send application").click()

    expect(applicant.get_by_test_id("application-status")).to_have_text("Applied")
    document = tmp_path / "passport.png"
    document.write_bytes(PNG)
    applicant.get_by_label("Identity document").set_input_files(str(document))
    applicant.get_by_role("button", name="Upload").click()
    expect(applicant.get_by_test_id("application-status")).to_have_text("In review")

    ops = new_page()
    sign_in(ops, staff.email)
    ops.goto("/staff/review/?status=in_review")
    row = ops.locator("tr", has_text="bea@example.org")
    expect(row.get_by_role("link", name="image/png")).to_be_visible()
    row.get_by_role("button", name="Approve").click()
    expect(ops.get_by_text("Bea Browser is now approved.")).to_be_visible()

    applicant.reload()
    expect(applicant.get_by_test_id("application-status")).to_have_text("Approved")


def test_apply_form_shows_errors_next_to_fields(new_page):
    page = new_page(viewport={"width": 390, "height": 844})
    page.goto("/apply/")
    page.get_by_label("Full name").fill("Short Pass")
    page.get_by_label("E-mail address").fill("short@example.org")
    page.get_by_label("Password").fill("123")
    page.get_by_label("Languages you can support customers in").fill("xx")
    page.get_by_label("General questions").check()
    page.get_by_label("Country").fill("PT")
    page.get_by_role("button", name="Send application").click()
    expect(page.get_by_role("alert").first).to_be_visible()
    expect(page.get_by_text("Not ISO 639-1 language codes: 'xx'.")).to_be_visible()
