from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("photos/<int:pk>/", views.photo, name="photo"),
    path("upload/", views.upload, name="upload"),
]
