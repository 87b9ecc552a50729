from django.db import migrations, models


def _item(name: str, table: str) -> migrations.CreateModel:
    return migrations.CreateModel(
        name=name,
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("sync_version", models.BigIntegerField(default=0)),
            ("sync_source", models.CharField(blank=True, default="", max_length=512)),
            ("key", models.CharField(max_length=255, unique=True)),
            ("name", models.CharField(max_length=255)),
            ("deleted", models.BooleanField(default=False)),
        ],
        options={"db_table": table},
    )


class Migration(migrations.Migration):
    dependencies = [("svcapp", "0001_initial")]
    operations = [_item("Item", "svc_item"), _item("ItemCopy", "svc_item_copy")]
