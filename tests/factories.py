"""factory_boy factories for people.  Other areas keep theirs beside their tests."""

import factory
from django.utils import timezone

from agents.models import Agent, AgentLanguage, AgentStatus, Role, Skill, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = factory.Faker("name")
    role = Role.CUSTOMER
    language = "en"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    role = Role.STAFF
    is_staff = True


class AgentFactory(factory.django.DjangoModelFactory):
    """An agent; ``status`` defaults to approved, ``languages``/``skills`` are lists."""

    class Meta:
        model = Agent
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, role=Role.AGENT)
    status = AgentStatus.APPROVED
    cohort = "student"
    country = "PT"
    time_zone = "Europe/Lisbon"
    capacity = 2
    status_changed_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def languages(obj, create, extracted, **kwargs):
        if create:
            codes = extracted if extracted is not None else ["en"]
            AgentLanguage.objects.bulk_create([AgentLanguage(agent=obj, code=c) for c in codes])

    @factory.post_generation
    def skills(obj, create, extracted, **kwargs):
        if create:
            slugs = extracted if extracted is not None else ["general"]
            obj.skills.set(Skill.objects.filter(slug__in=slugs))
