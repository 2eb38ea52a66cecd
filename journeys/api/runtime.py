"""A journey's runtime over REST, read-only, under /api/sandboxes/{sandbox_id}/journey-runtime/:

- list: every journey of the sandbox with its enrollment and email statistics (the dashboard);
- {id}/: the same for one journey plus its node counters (entered / current / exited, accounts
  and people);
- {id}/enrollments/: the accounts that entered (paginated, newest first), with where their people are.

Viewers read. The numbers come from journeys.services.runtime, as on the report pages.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from cdp.api.base import SandboxScopedViewSet
from cdp.api.serializers import ERROR_404
from journeys.models import Enrollment, Journey, PersonState
from journeys.services.runtime import journey_stats, node_counts



def register(router, sandbox_router):
    sandbox_router.register("journey-runtime", JourneyRuntimeViewSet, basename="journey-runtime")


class JourneyStatsSerializer(serializers.ModelSerializer):
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Journey
        fields = ["id", "name", "state", "audience", "current_version", "start_at", "end_at", "stats"]

    @staticmethod
    def get_stats(journey) -> dict:
        return journey._stats


class JourneyRuntimeSerializer(JourneyStatsSerializer):
    node_counts = serializers.SerializerMethodField()

    class Meta(JourneyStatsSerializer.Meta):
        fields = [*JourneyStatsSerializer.Meta.fields, "node_counts"]

    @staticmethod
    def get_node_counts(journey) -> dict:
        return node_counts(journey)


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = PersonState
        fields = ["person", "node", "state", "entered_node_at", "wake_at"]


class EnrollmentSerializer(serializers.ModelSerializer):
    tokens = TokenSerializer(many=True, read_only=True)

    class Meta:
        model = Enrollment
        fields = ["id", "account", "entry_number", "state", "node", "entered_at", "ended_at", "version", "tokens"]


@extend_schema_view(
    list=extend_schema(summary="Journeys with their runtime statistics", responses={200: JourneyStatsSerializer(many=True)}),
    retrieve=extend_schema(summary="A journey's statistics and node counters", responses={200: JourneyRuntimeSerializer, 404: ERROR_404}),
)
class JourneyRuntimeViewSet(SandboxScopedViewSet):
    queryset = Journey.objects.all()
    http_method_names = ["get", "head", "options"]
    serializer_class = JourneyStatsSerializer

    def get_queryset(self):
        return super().get_queryset().order_by("name")

    def get_serializer_class(self):
        return JourneyRuntimeSerializer if self.action == "retrieve" else JourneyStatsSerializer

    def _with_stats(self, journeys):
        stats = journey_stats(journeys)
        for journey in journeys:
            journey._stats = stats[journey.pk]
        return journeys

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(self._with_stats(list(page)), many=True).data)

    def retrieve(self, request, *args, **kwargs):
        journey = self._with_stats([self.get_object()])[0]
        return Response(self.get_serializer(journey).data)

    @extend_schema(summary="The accounts that entered the journey", responses={200: EnrollmentSerializer(many=True), 404: ERROR_404})
    @action(detail=True, methods=["get"])
    def enrollments(self, request, sandbox_id=None, pk=None):
        journey = self.get_object()
        enrollments = Enrollment.objects.filter(journey=journey).prefetch_related("tokens").order_by("-entered_at", "-id")
        page = self.paginate_queryset(enrollments)
        return self.get_paginated_response(EnrollmentSerializer(page, many=True).data)
