from django.contrib import admin

from journeys.models import BuyingGroup, BuyingGroupBuild, BuyingGroupMember, RolesTemplate, SolutionInterest, StagesModel


class MemberInline(admin.TabularInline):
    model = BuyingGroupMember
    extra = 0
    raw_id_fields = ["person"]


@admin.register(BuyingGroup)
class BuyingGroupAdmin(admin.ModelAdmin):
    list_display = ["account", "solution_interest", "status", "stage", "completeness_score", "engagement_score", "sandbox"]
    list_filter = ["status"]
    raw_id_fields = ["account"]
    inlines = [MemberInline]


@admin.register(BuyingGroupBuild)
class BuyingGroupBuildAdmin(admin.ModelAdmin):
    list_display = ["solution_interest", "audience", "status", "processed_accounts", "total_accounts", "finished_at"]


admin.site.register([RolesTemplate, StagesModel, SolutionInterest])
