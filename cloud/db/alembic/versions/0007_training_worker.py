"""training jobs: the process that claimed a job, so a restart on the same host fails a job
whose process is gone at once instead of after the stale timeout

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('training_jobs', sa.Column('worker', sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_column('worker')
