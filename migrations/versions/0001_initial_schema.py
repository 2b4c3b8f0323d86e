"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "centers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference_id", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=254), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_centers")),
    )
    op.create_table(
        "encounters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("unit_number", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_online", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_encounters_capacity_not_negative")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_encounters_ends_after_start")),
        sa.CheckConstraint("unit_number >= 1", name=op.f("ck_encounters_unit_positive")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_encounters_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
    )
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_encounters_center_start", ["center_id", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_encounters_online_unit_start",
            ["unit_number", "starts_at"],
            unique=False,
            postgresql_where=sa.text("is_online"),
            sqlite_where=sa.text("is_online"),
        )
        batch_op.create_index(
            "ix_encounters_unit_center_start",
            ["unit_number", "center_id", "starts_at"],
            unique=False,
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("reference_id", sa.String(length=254), nullable=False),
        sa.Column("reference_key", sa.String(length=254), nullable=False),
        sa.Column("role", sa.Enum("Student", "StaffMember", name="user_role"), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=True),
        sa.Column("current_unit", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "current_unit IS NULL OR current_unit >= 1",
            name=op.f("ck_users_current_unit_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_users_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_email_key", ["email_key"], unique=True)
        batch_op.create_index("ix_users_reference_key", ["reference_key"], unique=True)

    op.create_table(
        "bookings",
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_bookings_encounter_id_encounters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_bookings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("encounter_id", "user_id", name=op.f("pk_bookings")),
    )
    op.create_table(
        "staff_centers",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["centers.id"],
            name=op.f("fk_staff_centers_center_id_centers"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_centers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "center_id", name=op.f("pk_staff_centers")),
    )


def downgrade() -> None:
    op.drop_table("staff_centers")
    op.drop_table("bookings")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_reference_key")
        batch_op.drop_index("ix_users_email_key")

    op.drop_table("users")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index("ix_encounters_unit_center_start")
        batch_op.drop_index(
            "ix_encounters_online_unit_start",
            postgresql_where=sa.text("is_online"),
            sqlite_where=sa.text("is_online"),
        )
        batch_op.drop_index("ix_encounters_center_start")

    op.drop_table("encounters")
    op.drop_table("centers")
