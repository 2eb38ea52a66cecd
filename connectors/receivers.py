"""Signal receivers of the connectors app (connected in ``ConnectorsConfig.ready``)."""

from django.db import transaction
from django.dispatch import receiver

from cdp.signals import audience_deletion_requested, audience_membership_changed

# Imported here so workers register the activation tasks until Celery autodiscovers the module.
from connectors.activation_tasks import push_dataflow_task
from connectors.models import Dataflow, RunTrigger
from connectors.services.activation import streaming_dataflows_for


@receiver(audience_membership_changed, dispatch_uid="connectors.push_streaming_dataflows")
def push_streaming_dataflows(sender, sandbox_id, audience_id, **kwargs):
    """Streaming dataflows of the audience push what moved; the push reads it from the history."""
    for dataflow_id in streaming_dataflows_for(sandbox_id, audience_id):
        transaction.on_commit(
            lambda dataflow_id=dataflow_id: push_dataflow_task.delay(dataflow_id, RunTrigger.STREAMING.value)
        )


@receiver(audience_deletion_requested, dispatch_uid="connectors.keep_audiences_of_dataflows")
def keep_audiences_of_dataflows(sender, audience, **kwargs):
    """An audience feeding a dataflow stays until it is taken out: the dataflow's next run then
    removes its people from the destination, which deleting it outright would never do."""
    of_sandbox = Dataflow.objects.filter(sandbox=audience.sandbox).order_by("name")
    feeding = list(of_sandbox.filter(audiences=audience).values_list("name", flat=True)[:5])
    if feeding:
        return (f"It feeds the dataflows {', '.join(feeding)}: take it out of them first "
                "(their next run removes its people from the destinations).")
    # Taken out, but the removal of its people has not run yet: it reads the audience's history.
    withdrawing = list(of_sandbox.filter(cursors__has_key=str(audience.pk)).values_list("name", flat=True)[:5])
    if withdrawing:
        return (f"The dataflows {', '.join(withdrawing)} have yet to remove its people from their destinations: "
                "run them (Run now) or wait for their next run, then delete it.")
    return None
