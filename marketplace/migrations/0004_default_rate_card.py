from decimal import Decimal

from django.db import migrations

# A starting rate card in EUR; staff change it in the admin or the API.
DEFAULT_RATES = {
    "general": Decimal("2.00"),
    "account": Decimal("2.00"),
    "payments": Decimal("2.50"),
    "refunds": Decimal("2.50"),
    "technical": Decimal("3.00"),
    "disputes": Decimal("3.50"),
}


def create(apps, schema_editor):
    Skill = apps.get_model("agents", "Skill")
    RateCard = apps.get_model("marketplace", "RateCard")
    for slug, amount in DEFAULT_RATES.items():
        if Skill.objects.filter(slug=slug).exists():
            RateCard.objects.get_or_create(
                category_id=slug, currency="EUR", defaults={"amount": amount}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0003_offers_and_rates"),
        ("agents", "0002_default_skills"),
    ]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
