"""Template context every page gets."""
from annotation.roles import user_is_admin


def roles(request) -> dict:
    """``user_is_admin``: whether the signed-in user holds the admin role (annotation.roles), for the navigation."""
    return {"user_is_admin": user_is_admin(request.user)}
