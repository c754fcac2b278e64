from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0004_dispatch_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="agent",
            name="quality_score",
            field=models.PositiveSmallIntegerField(db_default=75, default=75),
        ),
    ]
