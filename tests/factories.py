import factory
from django.contrib.auth import get_user_model

from cdp.choices import Role, SandboxType
from cdp.models import Membership, Organization, Sandbox, SandboxRole

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class SandboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sandbox

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"sandbox-{n}")
    title = factory.LazyAttribute(lambda s: s.name.replace("-", " ").title())
    type = SandboxType.DEVELOPMENT


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    is_admin = False


def grant(user, sandbox, role: Role) -> SandboxRole:
    """Give ``user`` ``role`` in ``sandbox`` (joining its organization if needed)."""
    membership, _ = Membership.objects.get_or_create(user=user, organization=sandbox.organization)
    sandbox_role, _ = SandboxRole.objects.update_or_create(
        membership=membership, sandbox=sandbox, defaults={"role": role}
    )
    return sandbox_role


def make_org_admin(user, organization) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"is_admin": True}
    )
    return membership
