"""Jinja2 templates that callers write, rendered in a bounded sandbox.

Prompt templates (``/v1/prompts``) and chat templates come from people other than the
operator, so they render in :class:`BoundedSandbox`: jinja2's immutable sandbox (no attribute
writes, no unsafe attributes) plus

- no loader: ``include``, ``import``, ``extends`` are refused (:class:`TemplateRefused`);
- a step budget per render (``max_steps``): every call, filter and loop iteration counts, so
  ``range(10**8)``, nested loops and fan-out macro recursion stop early;
- a size budget (``max_output_chars``): ``"a" * 10**9``, ``2 ** 10**9``, doubling by ``~`` or
  ``+``, ``center(10**9)``, ``"%999999999d"`` and the rendered output are refused before they
  allocate.

Every failure of a render (syntax, undefined variables, refusals, ``1/0``) is raised as
``jinja2.TemplateError``, which the callers turn into a 400 naming the template error.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateRuntimeError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

if TYPE_CHECKING:
    from herald.settings import LimitSettings

__all__ = ["BoundedSandbox", "TemplateLimits", "TemplateRefused", "render"]

_ITER = "herald_bounded_iter"  # the global every {% for %} loop iterates through
_MACRO_STEPS = 10  # a macro call costs about ten loop iterations
_WIDTH = re.compile(r"\d{7,}")  # a format width of a million characters or more


class TemplateRefused(SecurityError):
    """The template asked for something the sandbox does not allow."""


@dataclass(frozen=True)
class TemplateLimits:
    """Bounds of one render (``security.limits.template_*`` settings)."""

    max_output_chars: int = 1_000_000
    max_steps: int = 1_000_000

    @classmethod
    def from_settings(cls, limits: LimitSettings) -> TemplateLimits:
        return cls(limits.template_max_output_chars, limits.template_max_steps)


class _Budget:
    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.steps = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limits.max_steps:
            raise TemplateRefused(
                f"the template takes more than {self.limits.max_steps} steps (calls, filters "
                "and loop iterations); make it do less work"
            )

    def size(self, value: Any) -> Any:
        cap = self.limits.max_output_chars
        if isinstance(value, str | bytes | list | tuple | dict) and len(value) > cap:
            raise TemplateRefused(f"the template builds a value longer than {cap} items")
        if isinstance(value, int) and value.bit_length() > 4 * cap:
            raise TemplateRefused("the template builds an integer too large to print")
        return value

    def args(self, args: Iterable[Any]) -> None:
        cap = self.limits.max_output_chars
        for a in args:
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > cap:
                raise TemplateRefused(
                    f"numbers above {cap} are not allowed as arguments in templates"
                )


_current: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "herald_template_budget", default=None
)


def _budget(env: BoundedSandbox) -> _Budget:
    b = _current.get()
    return b if b is not None else _Budget(env.limits)


def _formats(text: Any) -> None:
    if isinstance(text, str) and _WIDTH.search(text) is not None:
        raise TemplateRefused("format widths of a million characters or more are not allowed")


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # ``a ~ b`` checked like ``a + b`` (jinja2 joins it without the sandbox otherwise)
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Loops(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.Name(_ITER, "load"), [node.iter], [], None, None, lineno=node.lineno
        )
        return node


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox with no loader, a step budget and a size budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})
    code_generator_class = _CodeGenerator

    def __init__(self, *, limits: TemplateLimits | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits or TemplateLimits()
        self.globals["range"] = self._range
        self.globals[_ITER] = self._iterate
        self.filters = {name: self._guard(f) for name, f in self.filters.items()}

    # loading other templates ------------------------------------------------------------------
    def _load_template(self, name: Any, globals: Any) -> Any:
        raise TemplateRefused(
            "templates cannot include, import or extend other templates; inline the text"
        )

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        return super()._generate(_Loops().visit(source), name, filename, defer_init)

    # budgets ----------------------------------------------------------------------------------
    def _range(self, *args: int) -> Iterator[int]:
        rng = range(*args)
        if len(rng) > self.limits.max_steps:
            raise TemplateRefused(
                f"range() of {len(rng)} items is more than the {self.limits.max_steps} "
                "steps a template may take"
            )
        return self._iterate(rng)

    def _iterate(self, items: Iterable[Any]) -> Iterator[Any]:
        budget = _budget(self)
        for item in items:
            budget.step()
            yield item

    def _guard(self, f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            budget = _budget(self)
            budget.step()
            budget.args([*args, *kwargs.values()])
            if f.__name__ in ("do_format", "format"):
                _formats(next((a for a in args if isinstance(a, str)), None))
            return budget.size(f(*args, **kwargs))

        return guarded

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget(__self)
        budget.step(_MACRO_STEPS if isinstance(__obj, Macro) else 1)
        budget.args([*args, *kwargs.values()])
        return budget.size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            _formats(value.__self__)  # "{:>999999999}".format(...)
        return wrapper

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        budget = _budget(self)
        budget.step()
        cap = self.limits.max_output_chars
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > cap
                ):
                    raise TemplateRefused(f"the template repeats a value to more than {cap} items")
        elif operator_ == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right * max(left.bit_length() - 1, 0) > 4 * cap
            ):
                raise TemplateRefused("the template raises a number to too large a power")
        elif operator_ == "%":
            _formats(left)
            budget.args(right if isinstance(right, tuple) else (right,))
        try:
            result = self.binop_table[operator_](left, right)
        except OverflowError as exc:
            raise TemplateRefused(f"the template overflows a number: {exc}") from None
        return budget.size(result)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        cap = self.limits.max_output_chars
        text = [str(p) for p in parts]
        if sum(map(len, text)) > cap:
            raise TemplateRefused(f"the template builds a string longer than {cap} characters")
        return "".join(text)


def render(
    env: BoundedSandbox,
    template: str,
    variables: Mapping[str, Any],
    *,
    compiled: Any = None,
    passthrough: tuple[type[Exception], ...] = (),
) -> str:
    """Render ``template`` (or the already ``compiled`` one) with ``variables`` under a fresh
    budget; every failure is raised as a ``jinja2.TemplateError`` subclass, except the
    ``passthrough`` exceptions (raised on purpose by the environment's own globals)."""
    token = _current.set(_Budget(env.limits))
    keep: tuple[type[Exception], ...] = (TemplateError, *passthrough)
    try:
        tpl = compiled if compiled is not None else env.from_string(template)
        cap = env.limits.max_output_chars
        out: list[str] = []
        size = 0
        for chunk in tpl.generate(**dict(variables)):
            size += len(chunk)
            if size > cap:
                raise TemplateRefused(f"the rendered template is longer than {cap} characters")
            out.append(chunk)
        return "".join(out)
    except keep:
        raise
    except RecursionError:
        raise TemplateRefused("the template recurses too deeply") from None
    except MemoryError:
        raise TemplateRefused("the template needs too much memory") from None
    except Exception as exc:  # the template's own runtime error (1/0, a bad method call...)
        raise TemplateRuntimeError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _current.reset(token)
