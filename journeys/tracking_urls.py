"""Email tracking routes, mounted at /t/ (config/urls.py)."""

from django.urls import path

from journeys.views.tracking import click, open_pixel

app_name = "tracking"

urlpatterns = [
    path("o/<str:token>.gif", open_pixel, name="open"),
    path("c/<str:token>", click, name="click"),
]
