"""labels and datasets: what each uploaded sample shows (code text and fields, or defect class
and box) with who and when (re-labeling supersedes, disputes mark, history stays); versioned
dataset snapshots of labeled samples with their train / val / regression split

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 14:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('labels',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sample_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('who', sa.String(length=80), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('supersedes', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('disputed_by', sa.String(length=80), nullable=True),
    sa.Column('disputed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispute_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['sample_pk'], ['samples.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_sample_pk'), ['sample_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_labels_status'), ['status'], unique=False)
        # at most one label per sample that is not superseded (current or disputed)
        batch_op.create_index(
            'uq_labels_live', ['sample_pk'], unique=True,
            sqlite_where=sa.text("status != 'superseded'"),
            postgresql_where=sa.text("status != 'superseded'"),
        )
    op.create_table('datasets',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('parent', sa.String(length=16), nullable=True),
    sa.Column('val_percent', sa.Double(), nullable=False),
    sa.Column('regression_percent', sa.Double(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasets_created_at'), ['created_at'], unique=False)
    op.create_table('dataset_members',
    sa.Column('dataset_id', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sample_pk', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['label_id'], ['labels.id'], ),
    sa.ForeignKeyConstraint(['sample_pk'], ['samples.id'], ),
    sa.PrimaryKeyConstraint('dataset_id', 'sha256')
    )


def downgrade() -> None:
    op.drop_table('dataset_members')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasets_created_at'))
    op.drop_table('datasets')
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index('uq_labels_live')
        batch_op.drop_index(batch_op.f('ix_labels_status'))
        batch_op.drop_index(batch_op.f('ix_labels_sample_pk'))
    op.drop_table('labels')
