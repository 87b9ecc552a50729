"""Per-row backoff and parking of outbox rows the broker keeps refusing (issue 10, point 5)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rabbitsync", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="parked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="park_reason",
            field=models.TextField(blank=True, default=""),
        ),
    ]
