"""The template context every page gets: the organisations of the signed-in user (the
organisation switcher)."""

from accounts.tenancy import organisations_for


def tenancy(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"my_organisations": organisations_for(user).only("name", "slug")}
