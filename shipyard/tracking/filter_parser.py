"""The run-search filter language: text → typed AST (what the filters *mean* is in :mod:`.search`).

Grammar (EBNF). Keywords (``and or not in is null like ilike asc desc``) and entity prefixes are
case-insensitive; keys are not. Whitespace separates tokens and is otherwise ignored::

    filter     = [ or_expr ] ;                  (* empty or blank text: no filter *)
    or_expr    = and_expr { "or" and_expr } ;
    and_expr   = not_expr { "and" not_expr } ;  (* so: not > and > or *)
    not_expr   = "not" not_expr | primary ;
    primary    = "(" or_expr ")" | comparison ;
    comparison = entity compare_op value
               | entity [ "not" ] ( "like" | "ilike" ) string
               | entity [ "not" ] "in" "(" value { "," value } ")"
               | entity "is" [ "not" ] "null" ;
    compare_op = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    entity     = prefix "." key | attribute ;       (* a bare attribute: status, run_name, start_time… *)
    prefix     = "metrics" | "metric" | "params" | "param" | "tags" | "tag" | "datasets" | "dataset"
               | "attributes" | "attribute" | "attr" | "run" ;
    key        = key_char { key_char }                     (* e.g. val/acc, model.depth *)
               | "`" { any character but "`" } "`"         (* e.g. `my key` *)
               | string ;                                  (* e.g. "my key", as MLflow quotes keys *)
    key_char   = letter | digit | "_" | "-" | "." | "/" | ":" ;
    value      = number | string ;
    number     = [ "+" | "-" ] ( decimal [ exponent ] | "inf" | "infinity" | "nan" ) ;
    decimal    = digits [ "." [ digits ] ] | "." digits ;
    exponent   = ( "e" | "E" ) [ "+" | "-" ] digits ;
    string     = "'" { character } "'" | '"' { character } '"' ;
                 (* \\ is one backslash and \' (\") the quote; any other backslash is kept as written *)

    order_by_item = entity [ "asc" | "desc" ] ;            (* see parse_order_by *)

``attributes.KEY`` names a column of the run: run_id, name (alias run_name), status, start_time (alias
created), end_time, experiment_id, parent_run_id, user (alias user_id), artifact_uri; an attribute may also
be written bare (``status = 'FINISHED'``), and a key in single or double quotes (``metrics."my metric"``),
as MLflow's filters write them. ``datasets.KEY`` names a field of a dataset input: name,
digest, source, source_type, context.

Typing happens here, once: each :class:`Comparison` value already has the type the comparison is made in.
Metrics and ``start_time``/``end_time`` take numbers only (a ``float``); ``params.KEY`` with ``< <= > >=`` and
a number compares numerically (a ``float``); every other comparison is between strings, and a number written
there is kept as written (``params.depth = 5`` compares with the string ``'5'``). ``attributes.status`` is
upper-cased and checked against the run statuses. A misuse (``metrics.acc like '1%'``) raises
:class:`~shipyard.errors.InvalidInput` naming the entity; text that does not parse raises
:class:`~shipyard.errors.FilterSyntaxError` naming the token and its 0-based position.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.errors import FilterSyntaxError, InvalidInput
from shipyard.tracking.records import RunStatus


class EntityKind(enum.StrEnum):
    """What an entity names; the value is the canonical prefix."""

    METRIC = "metrics"
    PARAM = "params"
    TAG = "tags"
    ATTRIBUTE = "attributes"
    DATASET = "datasets"


class Op(enum.StrEnum):
    """A comparison operator; the value is its canonical spelling."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "like"
    ILIKE = "ilike"
    NOT_LIKE = "not like"
    NOT_ILIKE = "not ilike"
    IN = "in"
    NOT_IN = "not in"
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"


RANGE_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
LIKE_OPS = frozenset({Op.LIKE, Op.ILIKE, Op.NOT_LIKE, Op.NOT_ILIKE})

ATTRIBUTES = (
    "artifact_uri",
    "end_time",
    "experiment_id",
    "name",
    "parent_run_id",
    "run_id",
    "start_time",
    "status",
    "user",
)
TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
DATASET_FIELDS = ("context", "digest", "name", "source", "source_type")

_PREFIXES = {
    "metrics": EntityKind.METRIC,
    "metric": EntityKind.METRIC,
    "params": EntityKind.PARAM,
    "param": EntityKind.PARAM,
    "tags": EntityKind.TAG,
    "tag": EntityKind.TAG,
    "attributes": EntityKind.ATTRIBUTE,
    "attribute": EntityKind.ATTRIBUTE,
    "attr": EntityKind.ATTRIBUTE,
    "run": EntityKind.ATTRIBUTE,
    "datasets": EntityKind.DATASET,
    "dataset": EntityKind.DATASET,
}
# MLflow's names for the same attributes (its filters work here unchanged).
_ATTRIBUTE_ALIASES = {"run_name": "name", "run name": "name", "created": "start_time", "user_id": "user"}
_RUN_STATUSES = tuple(status.value for status in RunStatus)
_COMPARE_OPS = {
    "=": Op.EQ,
    "==": Op.EQ,
    "!=": Op.NE,
    "<>": Op.NE,
    "<": Op.LT,
    "<=": Op.LE,
    ">": Op.GT,
    ">=": Op.GE,
}
# Deep nesting would otherwise end in a RecursionError, which is not a message a user can act on.
_MAX_DEPTH = 100

_BARE_KEY = re.compile(r"[\w\-./:]+")
_WORD = re.compile(r"[^\W\d][\w\-./:]*")
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE
)
_GLUED = re.compile(r"[\w\-+./:]+")  # what may not follow a number: "5abc", "1.2.3", "-info"
_OPERATOR = re.compile(r"==|!=|<>|<=|>=|=|<|>")
_NUMBER_WORDS = frozenset({"inf", "infinity", "nan"})


@dataclass(frozen=True)
class Entity:
    """A thing a run has: ``metrics.acc`` is ``Entity(EntityKind.METRIC, "acc")``.

    Attribute names and dataset fields are canonical (lower case, ``run_name`` → ``name``).
    """

    kind: EntityKind
    key: str

    def __str__(self) -> str:
        key = self.key if _BARE_KEY.fullmatch(self.key) else f"`{self.key}`"
        return f"{self.kind.value}.{key}"


Value = float | str | tuple[float, ...] | tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """``entity op value``. ``value`` is None for the null tests and a tuple for ``in``/``not in``."""

    entity: Entity
    op: Op
    value: Value


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    entity: Entity
    descending: bool = False


def parse_filter(text: str | None) -> Expr | None:
    """Parse a filter string into a typed expression.

    Args:
        text: e.g. ``"metrics.acc > 0.9 and params.model = 'resnet'"``.

    Returns:
        The expression, or None when ``text`` is None, empty or blank (no filter).

    Raises:
        FilterSyntaxError: the text does not parse; ``.token`` and ``.position`` say where.
        InvalidInput: it parses but compares something it cannot (unknown attribute, string vs metric, …).
    """
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def parse_order_by(items: Sequence[str] | None) -> list[OrderKey]:
    """Parse order-by items such as ``"metrics.acc desc"``, ``"params.lr"``, ``"attributes.start_time ASC"``.

    Raises:
        InvalidInput: an item is not ``ENTITY [asc|desc]``, or names a dataset field (a run may have several).
    """
    if items is None:
        return []
    if isinstance(items, str):
        raise InvalidInput(f"order_by must be a list such as ['metrics.acc desc'], not the string {items!r}")
    return [_parse_order_item(item) for item in items]


def format_filter(expr: Expr) -> str:
    """Render an expression as filter text that :func:`parse_filter` reads back to an equal expression."""
    if isinstance(expr, Comparison):
        return _format_comparison(expr)
    if isinstance(expr, Not):
        inner = format_filter(expr.item)
        return f"not ({inner})" if isinstance(expr.item, And | Or) else f"not {inner}"
    # Nested groups of the same operator came from explicit parentheses; keep them so the AST round-trips.
    grouped: tuple[type, ...] = (And, Or) if isinstance(expr, And) else (Or,)
    parts = [f"({format_filter(i)})" if isinstance(i, grouped) else format_filter(i) for i in expr.items]
    return (" and " if isinstance(expr, And) else " or ").join(parts)


def _format_comparison(c: Comparison) -> str:
    if c.op in (Op.IS_NULL, Op.IS_NOT_NULL):
        return f"{c.entity} {c.op.value}"
    if isinstance(c.value, tuple):
        return f"{c.entity} {c.op.value} ({', '.join(format_value(v) for v in c.value)})"
    return f"{c.entity} {c.op.value} {format_value(c.value)}"


def format_value(value: float | str | None) -> str:
    """``value`` as a filter literal: a number as is, a string quoted with its quotes escaped."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise InvalidInput(f"cannot write {value!r} as a filter value")


# ---------------------------------------------------------------------------------------------- tokens


class _Kind(enum.Enum):
    WORD = enum.auto()  # a keyword, or a stray word the parser rejects
    ENTITY = enum.auto()
    NUMBER = enum.auto()
    STRING = enum.auto()
    OPERATOR = enum.auto()
    LPAREN = enum.auto()
    RPAREN = enum.auto()
    COMMA = enum.auto()
    END = enum.auto()


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # as written
    position: int
    value: float | str = ""  # NUMBER: the float; STRING: the decoded text; WORD: lower case; ENTITY: the key
    prefix: str = ""  # ENTITY only, as written

    def is_word(self, *words: str) -> bool:
        return self.kind is _Kind.WORD and self.value in words


_PUNCTUATION = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, ",": _Kind.COMMA}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(_Token(_PUNCTUATION[ch], ch, i))
            i += 1
        elif ch in "'\"":
            tokens.append(_read_string(text, i))
            i += len(tokens[-1].text)
        elif ch in "0123456789.+-":
            tokens.append(_read_number(text, i))
            i += len(tokens[-1].text)
        elif match := _OPERATOR.match(text, i):
            tokens.append(_Token(_Kind.OPERATOR, match.group(), i))
            i = match.end()
        elif match := _WORD.match(text, i):
            tokens.append(_read_word(text, i, match.group()))
            i += len(tokens[-1].text)
        else:
            raise FilterSyntaxError("unexpected character", token=ch, position=i)
    tokens.append(_Token(_Kind.END, "", n))
    return tokens


def _read_string(text: str, start: int) -> _Token:
    quote, chars, i = text[start], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            chars.append(text[i + 1])
            i += 2
        elif ch == quote:
            return _Token(_Kind.STRING, text[start : i + 1], start, "".join(chars))
        else:
            chars.append(ch)
            i += 1
    raise FilterSyntaxError("unterminated string", token=text[start:], position=start)


def _read_number(text: str, start: int) -> _Token:
    match = _NUMBER.match(text, start)
    if match is None:  # a sign or a dot that starts no number
        raise FilterSyntaxError("unexpected character", token=text[start], position=start)
    if glued := _GLUED.match(text, match.end()):
        raise FilterSyntaxError("malformed number", token=text[start : glued.end()], position=start)
    return _Token(_Kind.NUMBER, match.group(), start, float(match.group()))


def _read_word(text: str, start: int, word: str) -> _Token:
    prefix, dot, key = word.partition(".")
    if not dot:
        lowered = word.lower()
        if lowered in _NUMBER_WORDS:
            return _Token(_Kind.NUMBER, word, start, float(lowered))
        return _Token(_Kind.WORD, word, start, lowered)
    end = start + len(word)
    if not key and text.startswith("`", end):
        close = text.find("`", end + 1)
        if close < 0:
            raise FilterSyntaxError("unterminated `quoted` key", token=text[end:], position=end)
        key = text[end + 1 : close]
        word = text[start : close + 1]
    elif not key and text.startswith(("'", '"'), end):  # MLflow's quoted keys: metrics."my metric"
        quoted = _read_string(text, end)
        key = str(quoted.value)
        word = text[start : end + len(quoted.text)]
    if not key:
        raise FilterSyntaxError(f"expected a key after '{prefix}.'", token=word, position=start)
    if prefix.lower() not in _PREFIXES:
        raise FilterSyntaxError(
            f"unknown entity type '{prefix}'; expected metrics, params, tags, attributes or datasets",
            token=word,
            position=start,
        )
    return _Token(_Kind.ENTITY, word, start, key, prefix)


# ---------------------------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._i = 0  # index of the next token
        self._depth = 0  # nesting of parentheses and "not"
        self._open = 0  # parentheses open now

    def parse(self) -> Expr:
        expr = self._or()
        token = self._peek()
        if token.kind is _Kind.RPAREN:
            raise FilterSyntaxError("unbalanced parenthesis", token=token.text, position=token.position)
        if token.kind is not _Kind.END:
            raise self._unexpected(token, "expected 'and', 'or' or the end of the filter")
        return expr

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        token = self._tokens[self._i]
        if token.kind is not _Kind.END:
            self._i += 1
        return token

    def _before(self, token: _Token) -> _Token | None:
        index = self._tokens.index(token)
        return self._tokens[index - 1] if index > 0 else None

    def _or(self) -> Expr:
        items = [self._and()]
        while self._peek().is_word("or"):
            self._next()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Expr:
        items = [self._not()]
        while self._peek().is_word("and"):
            self._next()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self) -> Expr:
        if self._peek().is_word("not"):
            self._enter(self._next())
            item = self._not()
            self._depth -= 1
            return Not(item)
        return self._primary()

    def _primary(self) -> Expr:
        token = self._next()
        if token.kind is _Kind.LPAREN:
            self._enter(token)
            self._open += 1
            expr = self._or()
            self._open -= 1
            self._depth -= 1
            close = self._next()
            if close.kind is _Kind.END:
                raise FilterSyntaxError("unbalanced parenthesis", token="(", position=token.position)
            if close.kind is not _Kind.RPAREN:
                raise self._unexpected(close, "expected 'and', 'or' or ')'")
            return expr
        if token.kind is _Kind.ENTITY:
            return self._comparison(token)
        if (bare := _bare_attribute(token)) is not None:
            return self._comparison(bare)
        if token.kind is _Kind.RPAREN and self._open == 0:
            raise FilterSyntaxError("unbalanced parenthesis", token=token.text, position=token.position)
        before = self._before(token)
        after = f" after '{before.text}'" if before is not None else ""
        if token.kind in (_Kind.END, _Kind.RPAREN):
            raise FilterSyntaxError(
                f"expected a comparison{after}", token=token.text, position=token.position
            )
        raise self._unexpected(token, f"expected a comparison such as metrics.acc > 0.9{after}")

    def _comparison(self, entity_token: _Token) -> Comparison:
        entity = _entity(entity_token)
        token = self._next()
        if token.kind is _Kind.OPERATOR:
            op = _COMPARE_OPS[token.text]
            return Comparison(entity, op, _coerce(entity, op, self._value(token)))
        negated = token.is_word("not")
        if negated:
            token = self._next()
            if not token.is_word("like", "ilike", "in"):
                raise self._unexpected(token, "expected 'like', 'ilike' or 'in' after 'not'")
        if token.is_word("like", "ilike"):
            if token.value == "like":
                op = Op.NOT_LIKE if negated else Op.LIKE
            else:
                op = Op.NOT_ILIKE if negated else Op.ILIKE
            pattern = self._next()
            if pattern.kind is not _Kind.STRING:
                raise FilterSyntaxError(
                    f"expected a quoted pattern after '{token.text}'",
                    token=pattern.text,
                    position=pattern.position,
                )
            return Comparison(entity, op, _coerce(entity, op, pattern))
        if token.is_word("in"):
            op = Op.NOT_IN if negated else Op.IN
            return Comparison(entity, op, self._in_list(entity, op, token))
        if token.is_word("is"):
            negated = self._peek().is_word("not")
            if negated:
                self._next()
            null = self._next()
            if not null.is_word("null"):
                expected = "'null' after 'is not'" if negated else "'null' or 'not null' after 'is'"
                raise self._unexpected(null, f"expected {expected}")
            return Comparison(entity, Op.IS_NOT_NULL if negated else Op.IS_NULL, None)
        raise self._unexpected(token, f"expected an operator after '{entity_token.text}'")

    def _value(self, after: _Token) -> _Token:
        token = self._next()
        if token.kind not in (_Kind.NUMBER, _Kind.STRING):
            raise FilterSyntaxError(
                f"expected a value after '{after.text}'", token=token.text, position=token.position
            )
        return token

    def _in_list(self, entity: Entity, op: Op, in_token: _Token) -> tuple[float, ...] | tuple[str, ...]:
        open_paren = self._next()
        if open_paren.kind is not _Kind.LPAREN:
            raise self._unexpected(open_paren, f"expected '(' after '{in_token.text}'")
        values = [_coerce(entity, op, self._value(open_paren))]
        while True:
            token = self._next()
            if token.kind is _Kind.RPAREN:
                return tuple(values)  # type: ignore[return-value]  # _coerce gives one type per entity
            if token.kind is _Kind.END:
                raise FilterSyntaxError("unbalanced parenthesis", token="(", position=open_paren.position)
            if token.kind is not _Kind.COMMA:
                raise self._unexpected(token, "expected ',' or ')' in the value list")
            values.append(_coerce(entity, op, self._value(token)))

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise FilterSyntaxError(
                f"filter nested more than {_MAX_DEPTH} levels deep", token=token.text, position=token.position
            )

    @staticmethod
    def _unexpected(token: _Token, expectation: str) -> FilterSyntaxError:
        what = "unexpected end of filter" if token.kind is _Kind.END else "unexpected token"
        return FilterSyntaxError(f"{what}; {expectation}", token=token.text, position=token.position)


def _bare_attribute(token: _Token) -> _Token | None:
    """A bare attribute name (MLflow's ``status = 'FINISHED'``, ``start_time DESC``) as the entity
    ``attributes.NAME``; None for any other token."""
    if token.kind is _Kind.WORD and _ATTRIBUTE_ALIASES.get(str(token.value), token.value) in ATTRIBUTES:
        return _Token(_Kind.ENTITY, token.text, token.position, token.text, "attributes")
    return None


def _entity(token: _Token) -> Entity:
    kind = _PREFIXES[token.prefix.lower()]
    key = str(token.value)
    if kind is EntityKind.ATTRIBUTE:
        name = _ATTRIBUTE_ALIASES.get(key.lower(), key.lower())
        if name not in ATTRIBUTES:
            raise InvalidInput(
                f"unknown attribute {key!r} at position {token.position}; "
                f"valid attributes: {', '.join(ATTRIBUTES)} (run_name is an alias of name)"
            )
        return Entity(kind, name)
    if kind is EntityKind.DATASET:
        if key.lower() not in DATASET_FIELDS:
            raise InvalidInput(
                f"unknown dataset field {key!r} at position {token.position}; "
                f"valid fields: {', '.join(DATASET_FIELDS)}"
            )
        return Entity(kind, key.lower())
    return Entity(kind, key)


def _coerce(entity: Entity, op: Op, literal: _Token) -> float | str:
    """The literal as the type ``entity op literal`` compares in; raises InvalidInput for a misuse."""
    is_number = literal.kind is _Kind.NUMBER
    if entity.kind is EntityKind.METRIC or (
        entity.kind is EntityKind.ATTRIBUTE and entity.key in TIME_ATTRIBUTES
    ):
        what = "epoch milliseconds" if entity.kind is EntityKind.ATTRIBUTE else "a number"
        if op in LIKE_OPS:
            raise InvalidInput(
                f"{entity} is {what}: '{op.value}' needs a string; use =, !=, <, <=, >, >= or in"
            )
        if not is_number:
            raise InvalidInput(f"{entity} is {what} and cannot be compared with the string {literal.text}")
        return float(literal.value)
    if entity.kind is EntityKind.PARAM and op in RANGE_OPS and is_number:
        return float(literal.value)
    if entity == Entity(EntityKind.ATTRIBUTE, "status"):
        return _status(op, literal)
    return literal.text if is_number else str(literal.value)


def _status(op: Op, literal: _Token) -> str:
    valid = ", ".join(_RUN_STATUSES)
    if op in RANGE_OPS:
        raise InvalidInput(f"attributes.status has no order; use =, !=, in or like with one of {valid}")
    if literal.kind is _Kind.NUMBER:
        raise InvalidInput(f"attributes.status is one of {valid}, not the number {literal.text}")
    status = str(literal.value).upper()
    if op not in LIKE_OPS and status not in _RUN_STATUSES:
        raise InvalidInput(f"attributes.status {literal.text} is not a run status; valid: {valid}")
    return status


def _parse_order_item(item: str) -> OrderKey:
    usage = "expected 'ENTITY [asc|desc]' such as 'metrics.acc desc'"
    if not isinstance(item, str):
        raise InvalidInput(f"order_by item {item!r} is not a string; {usage}")
    try:
        tokens = _tokenize(item)
    except FilterSyntaxError as exc:
        raise InvalidInput(f"invalid order_by item {item!r}: {exc}") from exc
    tokens[0] = _bare_attribute(tokens[0]) or tokens[0]
    if tokens[0].kind is not _Kind.ENTITY:
        raise InvalidInput(f"invalid order_by item {item!r}: {usage}")
    direction = tokens[1]
    if direction.kind is not _Kind.END and not direction.is_word("asc", "desc"):
        raise InvalidInput(f"invalid order_by item {item!r}: {usage}")
    if direction.kind is not _Kind.END and tokens[2].kind is not _Kind.END:
        raise InvalidInput(f"invalid order_by item {item!r}: {usage}")
    entity = _entity(tokens[0])
    if entity.kind is EntityKind.DATASET:
        raise InvalidInput(f"cannot order by {entity} in {item!r}: a run may have several datasets")
    return OrderKey(entity, descending=direction.is_word("desc"))


__all__ = [
    "ATTRIBUTES",
    "DATASET_FIELDS",
    "LIKE_OPS",
    "RANGE_OPS",
    "TIME_ATTRIBUTES",
    "And",
    "Comparison",
    "Entity",
    "EntityKind",
    "Expr",
    "Not",
    "Op",
    "Or",
    "OrderKey",
    "Value",
    "format_filter",
    "parse_filter",
    "parse_order_by",
]
