"""Content-Security-Policy on every response.

Django 5.2 has no built-in CSP (it arrives in 6.0), and the policy here is a handful of
fixed directives, so a small middleware does it rather than a dependency: the policy is
read from settings (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_RELAXED) and the
relaxed one applies under the path prefixes in CONTENT_SECURITY_POLICY_RELAXED_PATHS
(DRF's browsable API writes ``style="..."`` attributes in its templates). A header a view
set itself is left alone.
"""
from django.conf import settings


def _header(policy: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.strict = _header(settings.CONTENT_SECURITY_POLICY)
        self.relaxed = _header(settings.CONTENT_SECURITY_POLICY_RELAXED)
        self.relaxed_paths = tuple(settings.CONTENT_SECURITY_POLICY_RELAXED_PATHS)

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            relaxed = request.path.startswith(self.relaxed_paths)
            response["Content-Security-Policy"] = self.relaxed if relaxed else self.strict
        return response
