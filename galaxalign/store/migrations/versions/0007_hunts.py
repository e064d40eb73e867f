"""rare-object hunts: a hunt per survey (its query) and the volunteers' grid decisions, one per
volunteer and galaxy

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 07:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hunts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('survey_id', sa.Integer(), sa.ForeignKey('surveys.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('query', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('survey_id', 'name', name='uq_hunt_survey_name'))
    op.create_table(
        'hunt_votes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('hunt_id', sa.Integer(), sa.ForeignKey('hunts.id', ondelete='CASCADE'), nullable=False),
        sa.Column('galaxy_id', sa.Integer(), sa.ForeignKey('galaxies.id', ondelete='CASCADE'), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('confirmed', sa.Boolean(), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('hunt_id', 'galaxy_id', 'volunteer_id', name='uq_one_hunt_vote'))
    op.create_index('ix_hunt_votes_hunt', 'hunt_votes', ['hunt_id'])


def downgrade() -> None:
    op.drop_index('ix_hunt_votes_hunt', table_name='hunt_votes')
    op.drop_table('hunt_votes')
    op.drop_table('hunts')
