from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("photos", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="photo",
            name="thumbnail",
            field=models.ImageField(blank=True, upload_to="thumbnails/%Y/%m/"),
        ),
        migrations.AddField(
            model_name="photo",
            name="thumbnailed_by",
            field=models.CharField(blank=True, max_length=100),
        ),
    ]
