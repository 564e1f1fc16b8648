"""Changes to a copy of examples/blog that make the releases the day-2 tests of both
targets need (one owner for each)."""

from __future__ import annotations

from pathlib import Path


def add_subtitle(src: Path) -> Path:
    """The expand half of expand and contract: a nullable column more on Post
    (blog.0002_post_subtitle), a migration the blog's own releases do not know."""
    models = src / "blog" / "models.py"
    models.write_text(models.read_text().replace(
        "    text = models.TextField()\n",
        "    text = models.TextField()\n    subtitle = models.CharField(max_length=200, blank=True, null=True)\n"))
    (src / "blog" / "migrations" / "0002_post_subtitle.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('blog', '0001_initial')]\n"
        "    operations = [migrations.AddField('post', 'subtitle',\n"
        "                                      models.CharField(max_length=200, blank=True, null=True))]\n")
    return src
