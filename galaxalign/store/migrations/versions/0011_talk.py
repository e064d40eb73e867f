"""Talk: comments per galaxy with their hashtags and mentions, the moderation log, and a volunteer's
suspension from Talk

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'comments',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('galaxy_id', sa.Integer(), sa.ForeignKey('galaxies.id', ondelete='CASCADE'), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('hidden_at', sa.DateTime(), nullable=True),
        sa.Column('hidden_by', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True))
    op.create_index('ix_comments_galaxy', 'comments', ['galaxy_id', 'created_at'])
    op.create_index('ix_comments_volunteer', 'comments', ['volunteer_id', 'created_at'])
    op.create_index('ix_comments_created', 'comments', ['created_at'])
    op.create_table(
        'comment_tags',
        sa.Column('comment_id', sa.Integer(), sa.ForeignKey('comments.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('tag', sa.String(length=40), primary_key=True),
        sa.Column('galaxy_id', sa.Integer(), sa.ForeignKey('galaxies.id', ondelete='CASCADE'), nullable=False))
    op.create_index('ix_comment_tags_tag', 'comment_tags', ['tag', 'galaxy_id'])
    op.create_table(
        'comment_mentions',
        sa.Column('comment_id', sa.Integer(), sa.ForeignKey('comments.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), primary_key=True))
    op.create_index('ix_comment_mentions_volunteer', 'comment_mentions', ['volunteer_id'])
    op.create_table(
        'moderation_log',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('actor_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('comment_id', sa.Integer(), nullable=True),  # no key: a deleted comment's id stays on record
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False))
    with op.batch_alter_table('volunteers') as batch:
        batch.add_column(sa.Column('talk_suspended_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('volunteers') as batch:
        batch.drop_column('talk_suspended_at')
    op.drop_table('moderation_log')
    op.drop_index('ix_comment_mentions_volunteer', table_name='comment_mentions')
    op.drop_table('comment_mentions')
    op.drop_index('ix_comment_tags_tag', table_name='comment_tags')
    op.drop_table('comment_tags')
    for ix in ('ix_comments_created', 'ix_comments_volunteer', 'ix_comments_galaxy'):
        op.drop_index(ix, table_name='comments')
    op.drop_table('comments')
