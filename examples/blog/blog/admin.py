from django.contrib import admin

from .models import Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "author", "created_date", "published_date"]
    list_filter = ["published_date"]
    search_fields = ["title", "text"]
    date_hierarchy = "created_date"
