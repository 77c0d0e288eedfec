"""The endpoint WordPress posts to when a synced record changed (docs §15)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.wordpress import contract
from push.services import receive

MAX_BODY = 4096  # a push is a few bytes; nothing bigger is read


@csrf_exempt  # signed by the plugin (HMAC), not a browser form
@require_POST
def receive_push(request, connector: int):
    if len(request.body) > MAX_BODY:
        return JsonResponse({"ok": False, "message": "Body too large."}, status=413)
    outcome = receive(
        connector,
        request.headers.get(contract.PUSH_TIMESTAMP_HEADER, ""),
        request.headers.get(contract.PUSH_SIGNATURE_HEADER, ""),
        request.body,
    )
    response = JsonResponse(
        {"ok": outcome.status < 300, "message": outcome.message}, status=outcome.status
    )
    if outcome.retry_after is not None:
        response["Retry-After"] = str(outcome.retry_after)
    return response
