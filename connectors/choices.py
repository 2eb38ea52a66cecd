from django.db import models


class PairingKind(models.TextChoices):
    """What a pairing makes an external instance do for a sandbox."""

    SOURCE = "source", "Source"
    DESTINATION = "destination", "Destination"
    JOURNEY_SUBSCRIPTION = "journey_subscription", "Journey subscription"


class SalesforceAuthFlow(models.TextChoices):
    CLIENT_CREDENTIALS = "client_credentials", "OAuth client credentials"
    JWT_BEARER = "jwt_bearer", "OAuth JWT bearer"
