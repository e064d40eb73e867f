"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 18:48:47.068457
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The first schema, in three parts (one function each, so that none is long)."""
    _surveys_volunteers_galaxies()
    _jobs_and_model_versions()
    _classifications_and_predictions()


def _surveys_volunteers_galaxies() -> None:
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('label_set', sa.String(length=40), nullable=True),
    sa.Column('class_names', sa.JSON(), nullable=False),
    sa.Column('workflow', sa.String(length=20), nullable=False),
    sa.Column('n_galaxies', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('volunteers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('galaxies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('id_str', sa.String(length=200), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('ra', sa.Float(), nullable=True),
    sa.Column('dec', sa.Float(), nullable=True),
    sa.Column('known_label', sa.Integer(), nullable=True),
    sa.Column('gold', sa.Boolean(), nullable=False),
    sa.Column('n_votes', sa.Integer(), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.Column('retired_reason', sa.String(length=40), nullable=True),
    sa.Column('consensus_label', sa.Integer(), nullable=True),
    sa.Column('consensus_agreement', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('survey_id', 'id_str', name='uq_galaxy_survey_id_str')
    )
    with op.batch_alter_table('galaxies', schema=None) as batch_op:
        batch_op.create_index('ix_galaxy_queue', ['survey_id', 'retired', 'n_votes'], unique=False)


def _jobs_and_model_versions() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.Column('log_tail', sa.Text(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['requested_by'], ['volunteers.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_state'), ['state'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('checkpoint_path', sa.String(length=1000), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('embeddings_path', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def _classifications_and_predictions() -> None:
    op.create_table('classifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('galaxy_id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('workflow', sa.String(length=20), nullable=False),
    sa.Column('workflow_version', sa.String(length=20), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('resolved_class', sa.Integer(), nullable=True),
    sa.Column('proposal_class', sa.Integer(), nullable=True),
    sa.Column('proposal_confidence', sa.Float(), nullable=True),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('accepted', sa.Boolean(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['galaxy_id'], ['galaxies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('galaxy_id', 'volunteer_id', name='uq_one_vote_per_volunteer')
    )
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_classifications_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_classifications_galaxy_id'), ['galaxy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_classifications_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('predictions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('galaxy_id', sa.Integer(), nullable=False),
    sa.Column('probs', sa.JSON(), nullable=False),
    sa.Column('top_class', sa.Integer(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('entropy', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['galaxy_id'], ['galaxies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_version_id', 'galaxy_id', name='uq_prediction')
    )
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_predictions_galaxy_id'), ['galaxy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_predictions_model_version_id'), ['model_version_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_predictions_model_version_id'))
        batch_op.drop_index(batch_op.f('ix_predictions_galaxy_id'))

    op.drop_table('predictions')
    with op.batch_alter_table('classifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_classifications_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_classifications_galaxy_id'))
        batch_op.drop_index(batch_op.f('ix_classifications_created_at'))

    op.drop_table('classifications')
    op.drop_table('model_versions')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_state'))

    op.drop_table('jobs')
    with op.batch_alter_table('galaxies', schema=None) as batch_op:
        batch_op.drop_index('ix_galaxy_queue')

    op.drop_table('galaxies')
    op.drop_table('volunteers')
    op.drop_table('surveys')
