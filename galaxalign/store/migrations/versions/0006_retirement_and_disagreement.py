"""a retirement rule per survey (majority or skill, the model as k volunteers); per prediction the
disagreement of the model's two heads (the queue's BALD-like strategy), indexed like entropy

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 07:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('surveys') as batch:
        batch.add_column(sa.Column('retirement', sa.JSON(), nullable=True))
    with op.batch_alter_table('predictions') as batch:
        batch.add_column(sa.Column('disagreement', sa.Float(), nullable=True))
    op.create_index('ix_prediction_disagreement', 'predictions', ['model_version_id', 'disagreement'])


def downgrade() -> None:
    op.drop_index('ix_prediction_disagreement', table_name='predictions')
    with op.batch_alter_table('predictions') as batch:
        batch.drop_column('disagreement')
    with op.batch_alter_table('surveys') as batch:
        batch.drop_column('retirement')
