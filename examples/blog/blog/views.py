from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from .forms import PostForm
from .models import Post


def post_list(request):
    posts = (
        Post.objects.filter(published_date__lte=timezone.now())
        .select_related("author")
        .order_by("-published_date")
    )
    return render(request, "blog/post_list.html", {"posts": posts})


def post_detail(request, pk):
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    # Drafts are visible to their author and to staff only.
    if post.published_date is None and not _may_edit(request.user, post):
        raise Http404("No published post with this id.")
    return render(request, "blog/post_detail.html", {"post": post})


@login_required
def post_new(request):
    form = PostForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        post = form.save(commit=False)
        post.author = request.user
        post.publish()
        return redirect("post_detail", pk=post.pk)
    return render(request, "blog/post_edit.html", {"form": form, "is_new": True})


@login_required
def post_edit(request, pk):
    post = get_object_or_404(Post, pk=pk)
    if not _may_edit(request.user, post):
        raise PermissionDenied("Only the author may edit this post.")
    form = PostForm(request.POST or None, instance=post)
    if request.method == "POST" and form.is_valid():
        post = form.save(commit=False)
        if post.published_date is None:
            post.publish()
        else:
            post.save()
        return redirect("post_detail", pk=post.pk)
    return render(request, "blog/post_edit.html", {"form": form, "post": post})


def _may_edit(user, post):
    return user.is_authenticated and (
        user.pk == post.author_id or user.has_perm("blog.change_post")
    )
