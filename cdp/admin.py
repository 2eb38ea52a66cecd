from django.contrib import admin

from cdp.models import ApiToken, Membership, Organization, Sandbox, SandboxRole


class SandboxInline(admin.TabularInline):
    model = Sandbox
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [SandboxInline]


class SandboxRoleInline(admin.TabularInline):
    model = SandboxRole
    extra = 0


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "is_admin"]
    list_filter = ["organization", "is_admin"]
    inlines = [SandboxRoleInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at"]
    exclude = ["key_hash"]
