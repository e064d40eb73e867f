"""indexes for the queue on large surveys: galaxies by (survey, row) and predictions by (model, entropy)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 04:50:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_galaxy_survey_idx', 'galaxies', ['survey_id', 'idx'])
    op.create_index('ix_prediction_entropy', 'predictions', ['model_version_id', 'entropy'])


def downgrade() -> None:
    op.drop_index('ix_prediction_entropy', table_name='predictions')
    op.drop_index('ix_galaxy_survey_idx', table_name='galaxies')
