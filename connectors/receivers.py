"""Signal receivers of the connectors app (connected in ``ConnectorsConfig.ready``)."""

from django.db import transaction
from django.dispatch import receiver

from cdp.signals import audience_membership_changed

# Imported here so workers register the activation tasks until Celery autodiscovers the module.
from connectors.activation_tasks import push_dataflow_task
from connectors.models import RunTrigger
from connectors.services.activation import streaming_dataflows_for


@receiver(audience_membership_changed, dispatch_uid="connectors.push_streaming_dataflows")
def push_streaming_dataflows(sender, sandbox_id, audience_id, **kwargs):
    """Streaming dataflows of the audience push what moved; the push reads it from the history."""
    for dataflow_id in streaming_dataflows_for(sandbox_id, audience_id):
        transaction.on_commit(
            lambda dataflow_id=dataflow_id: push_dataflow_task.delay(dataflow_id, RunTrigger.STREAMING.value)
        )
