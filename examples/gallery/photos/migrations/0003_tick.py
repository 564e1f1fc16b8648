from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("photos", "0002_photo_thumbnail"),
    ]

    operations = [
        migrations.CreateModel(
            name="Tick",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(db_index=True, max_length=64)),
                ("ran_by", models.CharField(max_length=100)),
                ("ran_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
