"""The template context every page shares: the organisations the logged-in user can open."""


def tenancy(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from accounts.tenancy import organisations_for

    return {"my_organisations": organisations_for(user).only("name", "slug")}
