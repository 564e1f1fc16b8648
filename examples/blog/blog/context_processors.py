from .release import release_info


def release(request):
    """Host/pod name, release colour and version for the page header."""
    return release_info()
