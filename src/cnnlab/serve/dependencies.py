"""What a route needs, as FastAPI dependencies: the served model a request names (404 for another),
one the explainer can open (422 otherwise), its predict options, and the service's uploads.

    @router.post("/v1/mask")
    def mask(file: UploadFile, served: ModelInForm, uploads: ServiceUploads): ...

``create_app`` keeps the served models in ``app.state.models`` and the uploads (limits, decode
slots) in ``app.state.uploads``; routes reach them only through these.
"""
from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Form, Request

from cnnlab.errors import CnnlabError
from cnnlab.serve.served import FILE_OPTIONS, OPTION_NAMES, Served, client_options
from cnnlab.serve.uploads import HTTPError, Uploads, scrub


def served_models(request: Request) -> dict[str, Served]:
    return request.app.state.models


def service_uploads(request: Request) -> Uploads:
    return request.app.state.uploads


def pick(models: dict[str, Served], name: str | None) -> Served:
    """The served model ``name`` (the first one when None); 404 for a name not served here."""
    served = models.get(name or next(iter(models)))
    if served is None:
        raise HTTPError(404, f"model {name!r} is not served here; models: {', '.join(models)}")
    return served


ServedModels = Annotated[dict[str, Served], Depends(served_models)]


def model_in_form(models: ServedModels, model: Annotated[str | None, Form(
        description="a served model name (default: the first)")] = None) -> Served:
    return pick(models, model)


def model_in_query(models: ServedModels, model: str | None = None) -> Served:
    return pick(models, model)


def explainable(served: Served) -> Served:
    """``served`` when the explainer can open it up (a PyTorch classifier); 422 otherwise."""
    if not served.model.explainable:
        raise HTTPError(422, f"model {served.name!r}: the explainer opens up PyTorch classifiers; this is a "
                             f"{served.task.name} model run by {served.model.runtime}")
    return served


ModelInForm = Annotated[Served, Depends(model_in_form)]
ModelInQuery = Annotated[Served, Depends(model_in_query)]


def explainable_in_form(served: ModelInForm) -> Served:
    return explainable(served)


def explainable_in_query(served: ModelInQuery) -> Served:
    return explainable(served)


ExplainableInForm = Annotated[Served, Depends(explainable_in_form)]
ExplainableInQuery = Annotated[Served, Depends(explainable_in_query)]
ServiceUploads = Annotated[Uploads, Depends(service_uploads)]


async def option_fields(request: Request) -> dict:
    """Form fields named after a task's predict option (``topk=3``), each read as a JSON value
    (``3``, ``0.5``, ``true``) or else as its text."""
    form = await request.form()  # already parsed for the route's own fields: this reads the cache
    return {k: _form_value(v) for k, v in form.multi_items() if k in OPTION_NAMES}


def _form_value(text):
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return value if isinstance(value, (bool, int, float)) else text


def predict_options(served: ModelInForm, fields: Annotated[dict, Depends(option_fields)],
                    options: Annotated[str, Form(description="task options as a JSON object, e.g. "
                                                             "{\"topk\": 3}; or each as its own form field")] = "{}",
                    ) -> dict:
    """The JSON object ``options`` and the option form fields (these win), checked against the
    served task's typed options: 422 for malformed JSON, an unknown option, a file option or a bad value."""
    try:
        given = json.loads(options or "{}")
    except json.JSONDecodeError as e:
        raise HTTPError(422, f"options: not JSON ({e.msg}); expected an object such as {{\"topk\": 3}}") from None
    except RecursionError:  # the parser gives up at Python's recursion limit (~1000 levels)
        raise HTTPError(422, "options: nested too deeply; expected a flat object such as {\"topk\": 3}") from None
    if not isinstance(given, dict):
        raise HTTPError(422, "options: expected a JSON object such as {\"topk\": 3}")
    given.update(fields)
    allowed = {f.name for f in client_options(served.task)}
    for key in given:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            why = ("file options are not available over HTTP" if key in FILE_OPTIONS
                   else f"unknown option for the {served.task.name} task (model {served.name!r})")
            raise HTTPError(422, f"options.{key}: {why}; known: {known}")
    try:
        served.task.options(given, style="json")
    except CnnlabError as e:
        raise HTTPError(422, scrub(str(e), {})) from None
    return given
