"""OpenAPI post-processing: every operation documents the error answers it can give.

Each view documents its own success bodies and the errors specific to it; the generic ones (bad
input, no or invalid token, a role that does not allow it, an unknown id, sandbox or page) come from
the shared authentication, permission, pagination and lookup code, so they are added here once.
"""

ERROR_REF = {"$ref": "#/components/schemas/Error"}

GENERIC_ERRORS = {
    "400": "Invalid input: the body names the field and the problem, or the business rule that refused it.",
    "401": "No API token or session, or the token is invalid or revoked.",
    "403": "Your role does not allow this.",
    "404": "No such object, sandbox or page that you can see.",
}


def add_error_responses(result, generator, request, public):
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in GENERIC_ERRORS.items():
                if status not in responses:
                    responses[status] = {
                        "description": description,
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
    return result
