from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("photos/<int:pk>/", views.photo, name="photo"),
    path("upload/", views.upload, name="upload"),
    path("ticks/", views.ticks, name="ticks"),
    path("ticks/add/", views.tick, name="tick"),
]
