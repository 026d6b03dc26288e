"""samples: training samples uploaded by devices (the sample inbox's first table)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:35:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=63), nullable=False),
    sa.Column('org', sa.String(length=63), nullable=False),
    sa.Column('site', sa.String(length=63), nullable=False),
    sa.Column('sample_id', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('read_status', sa.String(length=16), nullable=True),
    sa.Column('confidence', sa.Double(), nullable=True),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id', 'sample_id', name='uq_samples_device_sample')
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_samples_org'), ['org'], unique=False)
        batch_op.create_index(batch_op.f('ix_samples_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_samples_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_samples_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_samples_received_at'))
        batch_op.drop_index(batch_op.f('ix_samples_status'))
        batch_op.drop_index(batch_op.f('ix_samples_sha256'))
        batch_op.drop_index(batch_op.f('ix_samples_org'))
    op.drop_table('samples')
