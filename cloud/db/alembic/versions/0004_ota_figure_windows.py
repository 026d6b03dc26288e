"""ota figures: per-device windows (opened_at) and indexes for them and for retention

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ota_figures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'ix_ota_figures_device_window', ['device_id', 'model', 'version', 'at'], unique=False
        )
        batch_op.create_index('ix_ota_figures_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ota_figures', schema=None) as batch_op:
        batch_op.drop_index('ix_ota_figures_at')
        batch_op.drop_index('ix_ota_figures_device_window')
        batch_op.drop_column('opened_at')
