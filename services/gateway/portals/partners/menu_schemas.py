"""The JSON shapes of a store's the menu and promotions, and their proto conversions."""

from __future__ import annotations

import datetime as dt
import uuid

from guichet.partners.v1 import partners_pb2 as pb
from pydantic import BaseModel, Field

from services.gateway.fields import (
    LINES,
    LINES_NOT_BLANK,
    DateTime,
    Email,
    StrictInt,
    optional_text,
    text,
)
from services.gateway.portals.partners.schemas import (
    MAX_PRICE_CENTS,
    NOTE_CAP,
    TEXT_CAP,
    ContentChangeStatus,
    PromotionKind,
    PromotionStatus,
    SupportMessageStatus,
    _none,
    _Request,
    _time,
)

# --- menu --------------------------------------------------------------------------------------


class Product(BaseModel):
    id: uuid.UUID = Field(examples=["c76ba440-dfb3-55f1-8daa-cc0f4783dd4e"])
    name: str = Field(examples=["Margherita"])
    description: str = Field(examples=["Tomate, mozzarella fior di latte, basilic."])
    price_cents: int = Field(examples=[1090])
    currency: str | None = Field(examples=["EUR"])
    active: bool = Field(examples=[False])
    reactivate_at: dt.datetime | None = Field(
        description="When it comes back by itself.", examples=["2026-03-15T10:00:00Z"]
    )
    deactivation_reason: str | None = Field(examples=["rupture de stock"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])

    @classmethod
    def from_proto(cls, product: pb.Product) -> Product:
        return cls(
            id=uuid.UUID(product.id),
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            currency=_none(product.currency),
            active=product.active,
            reactivate_at=_time(product, "reactivate_time"),
            deactivation_reason=_none(product.deactivation_reason),
            updated_at=_time(product, "update_time"),
        )


class ProductPage(BaseModel):
    items: list[Product]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ProductBody(_Request):
    name: str = text(200, "Margherita")
    description: str = optional_text(
        TEXT_CAP, "Tomate, mozzarella fior di latte, basilic.", default="", pattern=LINES
    )
    price_cents: StrictInt = Field(ge=0, le=MAX_PRICE_CENTS, examples=[1090])


class PriceBody(_Request):
    price_cents: StrictInt = Field(
        examples=[1190],
        description="Minor units of the store's currency.",
        ge=0,
        le=MAX_PRICE_CENTS,
    )


class DeactivateBody(_Request):
    reactivate_at: DateTime | None = Field(
        default=None,
        description="Bring it back by itself at this time: in the future, within 90 days (422 "
        "`in_the_past` or `too_far`).",
        # No fixed time stays within 90 days of every day: the example brings it back by hand.
        examples=[None],
    )
    reason: str | None = optional_text(200, "rupture de stock")


class ContentChangeBody(_Request):
    product_id: uuid.UUID | None = Field(
        default=None,
        description="Empty: a new product.",
        examples=["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"],
    )
    proposed_name: str | None = optional_text(200, "Pizza Quatre Fromages")
    proposed_description: str | None = optional_text(
        TEXT_CAP, "Mozzarella, gorgonzola, chèvre et comté sur base crème.", pattern=LINES
    )
    proposed_price_cents: StrictInt | None = Field(
        default=None,
        description="New products only (422 otherwise).",
        ge=0,
        le=MAX_PRICE_CENTS,
        examples=[1290],
    )
    note: str | None = optional_text(NOTE_CAP, "Le chèvre remplace l'emmental.", pattern=LINES)
    reply_to_email: Email | None = Field(default=None, examples=["carte@pizzeria-napoli.fr"])


class ContentChange(BaseModel):
    id: uuid.UUID = Field(examples=["d32398af-1523-5c4c-ac07-35a87c62e9f4"])
    product_id: uuid.UUID | None = Field(examples=["291d4f2e-f105-5aa7-b3f3-d9a6d4730202"])
    proposed_name: str | None = Field(examples=["Pizza Quatre Fromages"])
    proposed_description: str | None = Field(
        examples=["Mozzarella, gorgonzola, chèvre et comté sur base crème."]
    )
    proposed_price_cents: int | None = Field(examples=[1290])
    note: str | None = Field(examples=["Le chèvre remplace l'emmental."])
    status: ContentChangeStatus | None
    ticket_status: SupportMessageStatus | None
    ticket_id: str | None = Field(examples=["9f1d790a-2c37-561c-837b-58a5c16823bb"])
    decision_note: str | None = Field(examples=[None])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    decided_at: dt.datetime | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, change: pb.ContentChange) -> ContentChange:
        return cls(
            id=uuid.UUID(change.id),
            product_id=uuid.UUID(change.product_id) if change.product_id else None,
            proposed_name=_none(change.proposed_name),
            proposed_description=_none(change.proposed_description),
            proposed_price_cents=change.proposed_price_cents or None,
            note=_none(change.note),
            status=ContentChangeStatus.from_proto(change.status),
            ticket_status=SupportMessageStatus.from_proto(change.ticket_status),
            ticket_id=_none(change.ticket_id),
            decision_note=_none(change.decision_note),
            created_at=_time(change, "create_time"),
            decided_at=_time(change, "decide_time"),
        )


class ContentChangePage(BaseModel):
    items: list[ContentChange]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ContentDecision(BaseModel):
    content_change: ContentChange
    product: Product | None


class NoteBody(_Request):
    note: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Client prévenu par téléphone à 19 h 40."]
    )


# --- promotions --------------------------------------------------------------------------------


class Promotion(BaseModel):
    id: uuid.UUID = Field(examples=["175ffe0d-510f-5602-803a-159dc176dbb6"])
    name: str = Field(examples=["-20 % sur les pizzas"])
    kind: PromotionKind | None
    status: PromotionStatus | None
    percent_off: int | None = Field(examples=[20])
    amount_off_cents: int | None = Field(examples=[None])
    min_order_cents: int = Field(examples=[2500])
    product_ids: list[uuid.UUID] = Field(description="Empty: the whole menu.")
    starts_at: dt.datetime | None = Field(examples=["2026-03-31T22:00:00Z"])
    ends_at: dt.datetime | None = Field(examples=["2026-04-30T21:59:00Z"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    activated_at: dt.datetime | None = Field(examples=["2026-03-20T08:00:00Z"])

    @classmethod
    def from_proto(cls, promotion: pb.Promotion) -> Promotion:
        return cls(
            id=uuid.UUID(promotion.id),
            name=promotion.name,
            kind=PromotionKind.from_proto(promotion.kind),
            status=PromotionStatus.from_proto(promotion.status),
            percent_off=promotion.percent_off or None,
            amount_off_cents=promotion.amount_off_cents or None,
            min_order_cents=promotion.min_order_cents,
            product_ids=[uuid.UUID(p) for p in promotion.product_ids],
            starts_at=_time(promotion, "start_time"),
            ends_at=_time(promotion, "end_time"),
            created_at=_time(promotion, "create_time"),
            activated_at=_time(promotion, "activate_time"),
        )


class PromotionPage(BaseModel):
    items: list[Promotion]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class PromotionBody(_Request):
    """Step 1: a draft."""

    name: str = text(120, "-20 % sur les pizzas")
    kind: PromotionKind = Field(examples=["percent_off"])


class PromotionConfigBody(_Request):
    """Step 2: the discount, the products and the period."""

    percent_off: StrictInt | None = Field(
        default=None,
        description="A percent_off promotion's only (422 `does_not_apply` on another kind).",
        ge=1,
        le=90,
        examples=[20],
    )
    amount_off_cents: StrictInt | None = Field(
        default=None,
        description="An amount_off promotion's only (422 `does_not_apply` on another kind).",
        ge=1,
        le=MAX_PRICE_CENTS,
        examples=[None],
    )
    min_order_cents: StrictInt | None = Field(
        default=None, ge=0, le=MAX_PRICE_CENTS, examples=[2500]
    )
    product_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=200, examples=[["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"]]
    )
    starts_at: DateTime = Field(examples=["2099-04-01T00:00:00+02:00"])
    ends_at: DateTime = Field(
        examples=["2099-04-30T23:59:00+02:00"],
        description="After starts_at and now, at most 366 days after starts_at (422 otherwise).",
    )


class ProblemBody(_Request):
    description: str = text(
        TEXT_CAP,
        "La remise de 20 % ne s'applique pas aux pizzas ajoutées au panier.",
        pattern=LINES_NOT_BLANK,
    )
    reply_to_email: Email | None = Field(default=None, examples=["gerant@pizzeria-napoli.fr"])
