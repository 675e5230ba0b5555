"""conversations messages handoffs posts

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:23:17.519733
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column(
            "owner",
            sa.Enum("bot", "queue", "officer", name="owner", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("topic", sa.String(length=48), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
        sa.UniqueConstraint(
            "channel", "external_id", name=op.f("uq_conversation_channel_external_id")
        ),
    )
    op.create_table(
        "post",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("opening_hours", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("emergency_phone", sa.String(length=40), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("is_sample", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post")),
        sa.UniqueConstraint("country", "city", "kind", name=op.f("uq_post_country_city_kind")),
    )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_country"), ["country"], unique=False)

    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=48), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=48), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_handoff_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff")),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index(
            "ix_handoff_open_queue", ["closed_at", "priority", "queued_at"], unique=False
        )

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column(
            "direction",
            sa.Enum("inbound", "outbound", name="direction", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "sender",
            sa.Enum(
                "citizen", "bot", "officer", "system", name="sender", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("provider_id", sa.String(length=128), nullable=True),
        sa.Column(
            "delivery_state",
            sa.Enum(
                "received",
                "queued",
                "sent",
                "delivered",
                "failed",
                name="delivery_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_message_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint(
            "conversation_id", "provider_id", name=op.f("uq_message_conversation_id_provider_id")
        ),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_conversation_id_id", ["conversation_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_conversation_id_id")

    op.drop_table("message")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index("ix_handoff_open_queue")

    op.drop_table("handoff")
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_country"))

    op.drop_table("post")
    op.drop_table("conversation")
