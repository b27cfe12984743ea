"""JSON Schema validation as the grammar tests use it: Debian's python3-jsonschema (Draft 2020-12) with that draft's
format checker, so that "format" (date, time and date-time as RFC 3339, uuid) is checked too. {"type": "json_object"} (OpenAI's response_format) means any object."""
import jsonschema


def standard_schema(schema):
    """The schema with the one non-standard type name mapped to JSON Schema's."""
    if isinstance(schema, dict):
        out = {k: standard_schema(v) for k, v in schema.items()}
        if out.get("type") == "json_object":
            out["type"] = "object"
        return out
    if isinstance(schema, list):
        return [standard_schema(v) for v in schema]
    return schema


def validator(schema):
    return jsonschema.Draft202012Validator(standard_schema(schema), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
