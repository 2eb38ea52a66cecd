import factory

from connectors.choices import SalesforceAuthFlow
from connectors.models import MarketoInstance, SalesforceOrg
from tests.factories import OrganizationFactory

SECRET = "mkto-secret-Zq9xW2vB7nR4"


class MarketoInstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MarketoInstance

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Marketo {n}")
    munchkin_id = factory.Sequence(lambda n: f"{n % 1000:03d}-MKT-{n % 1000:03d}")
    client_id = factory.Sequence(lambda n: f"client-{n}")
    client_secret = SECRET


class SalesforceOrgFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesforceOrg

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Salesforce {n}")
    instance_url = factory.Sequence(lambda n: f"https://org{n}.my.salesforce.com")
    auth_flow = SalesforceAuthFlow.CLIENT_CREDENTIALS
    client_id = factory.Sequence(lambda n: f"consumer-{n}")
    client_secret = "sfdc-secret-Lm3kP8tY"


def same_instance_in(organization, instance: MarketoInstance, **kwargs) -> MarketoInstance:
    """The same Marketo instance (same Munchkin ID) registered separately by ``organization``."""
    return MarketoInstanceFactory(organization=organization, munchkin_id=instance.munchkin_id, **kwargs)
