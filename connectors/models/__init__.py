from .instances import MarketoInstance, SalesforceOrg
from .pairings import Pairing

__all__ = ["MarketoInstance", "Pairing", "SalesforceOrg"]
