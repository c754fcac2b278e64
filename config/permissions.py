from rest_framework.permissions import BasePermission


class IsOperations(BasePermission):
    """Operations staff only.  Others get 403, the API's answer for a role gap."""

    message = "Only operations staff may do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_operations)


class IsAgentUser(BasePermission):
    message = "Only agents may do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_agent and hasattr(user, "agent"))


class IsCustomerUser(BasePermission):
    message = "Only customers may do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_customer)
