from django.db import migrations

DEFAULT_SKILLS = [
    ("general", "General questions"),
    ("payments", "Payments"),
    ("refunds", "Refunds"),
    ("account", "Account and access"),
    ("disputes", "Disputes"),
    ("technical", "Technical problems"),
]


def create(apps, schema_editor):
    Skill = apps.get_model("agents", "Skill")
    for slug, name in DEFAULT_SKILLS:
        Skill.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
