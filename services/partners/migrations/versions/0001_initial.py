"""Initial partners schema: stores, menu, orders, events, payments, escalations, couriers,
check-ins, promotions, messages to support, content and bank-detail changes, proofs, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('workflow', sa.String(length=100), nullable=False),
    sa.Column('workflow_id', sa.String(length=300), nullable=False),
    sa.Column('task_queue', sa.String(length=100), nullable=False),
    sa.Column('argument', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('workflow_id', name=op.f('uq_outbox_workflow_id'))
    )
    op.create_index(op.f('ix_outbox_started_at'), 'outbox', ['started_at'], unique=False)
    op.create_table('stores',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('operations_email', sa.String(length=320), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=True),
    sa.Column('bic', sa.String(length=11), nullable=True),
    sa.Column('account_holder', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stores'))
    )
    op.create_index('ix_stores_name_id', 'stores', ['name', 'id'], unique=False)
    op.create_table('bank_detail_changes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=False),
    sa.Column('bic', sa.String(length=11), nullable=False),
    sa.Column('account_holder', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('awaiting_proof', 'proof_submitted', 'approved', 'rejected')", name=op.f('ck_bank_detail_changes_status')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_bank_detail_changes_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_detail_changes'))
    )
    op.create_index('ix_bank_detail_changes_status_created', 'bank_detail_changes', ['status', 'created_at', 'id'], unique=False)
    op.create_index('ix_bank_detail_changes_store_created', 'bank_detail_changes', ['store_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_bank_detail_changes_one_open', 'bank_detail_changes', ['store_id'], unique=True, postgresql_where=sa.text("status IN ('awaiting_proof', 'proof_submitted')"))
    op.create_table('check_ins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_check_ins_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_ins')),
    sa.UniqueConstraint('store_id', 'day', name=op.f('uq_check_ins_store_id_day'))
    )
    op.create_table('orders',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('customer_name', sa.String(length=200), nullable=False),
    sa.Column('customer_phone', sa.String(length=32), nullable=False),
    sa.Column('courier_name', sa.String(length=200), nullable=False),
    sa.Column('courier_phone', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('paid_cents', sa.BigInteger(), nullable=False),
    sa.Column('cancellation_reason', sa.String(length=200), nullable=True),
    sa.Column('refund_reason', sa.String(length=200), nullable=True),
    sa.Column('refund_funded_by', sa.String(length=16), nullable=True),
    sa.Column('escalation_status', sa.String(length=16), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("refund_funded_by IS NULL OR refund_funded_by IN ('platform', 'partner')", name=op.f('ck_orders_refund_funded_by')),
    sa.CheckConstraint("status IN ('accepted', 'collected', 'delivered', 'cancelled', 'refunded')", name=op.f('ck_orders_status')),
    sa.CheckConstraint('total_cents >= 0 AND paid_cents >= 0', name=op.f('ck_orders_amounts')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_orders_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('store_id', 'code', name=op.f('uq_orders_store_id_code'))
    )
    op.create_index('ix_orders_store_history', 'orders', ['store_id', 'created_at', 'id'], unique=False, postgresql_where=sa.text("status <> 'accepted'"))
    op.create_index('ix_orders_store_status_created', 'orders', ['store_id', 'status', 'created_at', 'id'], unique=False)
    op.create_table('products',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('reactivate_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deactivation_reason', sa.String(length=200), nullable=True),
    sa.Column('deactivation_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_products_price')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_products_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products'))
    )
    op.create_index('ix_products_store_name', 'products', ['store_id', 'name', 'id'], unique=False)
    op.create_table('promotions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('percent_off', sa.Integer(), nullable=True),
    sa.Column('amount_off_cents', sa.BigInteger(), nullable=True),
    sa.Column('min_order_cents', sa.BigInteger(), nullable=False),
    sa.Column('product_ids', postgresql.ARRAY(sa.Uuid()), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('percent_off', 'amount_off', 'free_delivery')", name=op.f('ck_promotions_kind')),
    sa.CheckConstraint("status IN ('draft', 'configured', 'active')", name=op.f('ck_promotions_status')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_promotions_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promotions'))
    )
    op.create_index('ix_promotions_store_created', 'promotions', ['store_id', 'created_at', 'id'], unique=False)
    op.create_table('support_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('reply_to_email', sa.String(length=320), nullable=False),
    sa.Column('order_code', sa.String(length=40), nullable=True),
    sa.Column('period', sa.String(length=7), nullable=True),
    sa.Column('subject_kind', sa.String(length=24), nullable=False),
    sa.Column('subject_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ticket_id', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("category IN ('content_changes', 'bank_details', 'invoices_and_orders', 'other')", name=op.f('ck_support_messages_category')),
    sa.CheckConstraint("status IN ('pending_ticket', 'ticket_opened')", name=op.f('ck_support_messages_status')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_support_messages_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_messages'))
    )
    op.create_index('ix_support_messages_store_created', 'support_messages', ['store_id', 'created_at', 'id'], unique=False)
    op.create_table('content_changes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('product_id', sa.Uuid(), nullable=True),
    sa.Column('proposed_name', sa.String(length=200), nullable=True),
    sa.Column('proposed_description', sa.Text(), nullable=True),
    sa.Column('proposed_price_cents', sa.BigInteger(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('support_message_id', sa.Uuid(), nullable=False),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'applied', 'rejected')", name=op.f('ck_content_changes_status')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_content_changes_product_id_products')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_content_changes_store_id_stores')),
    sa.ForeignKeyConstraint(['support_message_id'], ['support_messages.id'], name=op.f('fk_content_changes_support_message_id_support_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_changes'))
    )
    op.create_index('ix_content_changes_store_created', 'content_changes', ['store_id', 'created_at', 'id'], unique=False)
    op.create_table('courier_reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('late', 'behaviour', 'damaged_order', 'other')", name=op.f('ck_courier_reports_reason')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_courier_reports_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_courier_reports_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_courier_reports')),
    sa.UniqueConstraint('order_id', name=op.f('uq_courier_reports_order_id'))
    )
    op.create_table('order_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    op.create_index('ix_order_events_order', 'order_events', ['order_id', 'id'], unique=False)
    op.create_table('order_items',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('replaces_item_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("status IN ('active', 'out_of_stock', 'replaced')", name=op.f('ck_order_items_status')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_items_quantity')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_order_items_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items'))
    )
    op.create_index('ix_order_items_order', 'order_items', ['order_id', 'position'], unique=False)
    op.create_table('payments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('funded_by', sa.String(length=16), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("funded_by IS NULL OR funded_by IN ('platform', 'partner')", name=op.f('ck_payments_funded_by')),
    sa.CheckConstraint("kind IN ('payment', 'refund')", name=op.f('ck_payments_kind')),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payments_amount')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_payments_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    op.create_index('ix_payments_order', 'payments', ['order_id', 'created_at'], unique=False)
    op.create_index('uq_payments_one_refund', 'payments', ['order_id'], unique=True, postgresql_where=sa.text("kind = 'refund'"))
    op.create_table('proof_documents',
    sa.Column('change_id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_id'], ['bank_detail_changes.id'], name=op.f('fk_proof_documents_change_id_bank_detail_changes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_proof_documents_store_id_stores')),
    sa.PrimaryKeyConstraint('change_id', name=op.f('pk_proof_documents'))
    )
    op.create_table('escalations',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('store_id', sa.Uuid(), nullable=False),
    sa.Column('item_id', sa.Uuid(), nullable=False),
    sa.Column('product_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('answer', sa.String(length=16), nullable=True),
    sa.Column('answer_deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('support_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replacement_product_id', sa.Uuid(), nullable=True),
    sa.Column('replacement_quantity', sa.Integer(), nullable=True),
    sa.Column('support_message_id', sa.Uuid(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=16), nullable=True),
    sa.Column('refunded', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("answer IS NULL OR answer IN ('accepted', 'refused', 'none')", name=op.f('ck_escalations_answer')),
    sa.CheckConstraint("status IN ('awaiting_answer', 'accepted', 'item_replaced', 'escalated', 'cancelled')", name=op.f('ck_escalations_status')),
    sa.ForeignKeyConstraint(['item_id'], ['order_items.id'], name=op.f('fk_escalations_item_id_order_items')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_escalations_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_escalations_product_id_products')),
    sa.ForeignKeyConstraint(['replacement_product_id'], ['products.id'], name=op.f('fk_escalations_replacement_product_id_products')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_escalations_store_id_stores')),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_escalations'))
    )
    op.create_index('ix_escalations_status_created', 'escalations', ['status', 'created_at', 'order_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_escalations_status_created', table_name='escalations')
    op.drop_table('escalations')
    op.drop_table('proof_documents')
    op.drop_index('uq_payments_one_refund', table_name='payments', postgresql_where=sa.text("kind = 'refund'"))
    op.drop_index('ix_payments_order', table_name='payments')
    op.drop_table('payments')
    op.drop_index('ix_order_items_order', table_name='order_items')
    op.drop_table('order_items')
    op.drop_index('ix_order_events_order', table_name='order_events')
    op.drop_table('order_events')
    op.drop_table('courier_reports')
    op.drop_index('ix_content_changes_store_created', table_name='content_changes')
    op.drop_table('content_changes')
    op.drop_index('ix_support_messages_store_created', table_name='support_messages')
    op.drop_table('support_messages')
    op.drop_index('ix_promotions_store_created', table_name='promotions')
    op.drop_table('promotions')
    op.drop_index('ix_products_store_name', table_name='products')
    op.drop_table('products')
    op.drop_index('ix_orders_store_status_created', table_name='orders')
    op.drop_index('ix_orders_store_history', table_name='orders', postgresql_where=sa.text("status <> 'accepted'"))
    op.drop_table('orders')
    op.drop_table('check_ins')
    op.drop_index('uq_bank_detail_changes_one_open', table_name='bank_detail_changes', postgresql_where=sa.text("status IN ('awaiting_proof', 'proof_submitted')"))
    op.drop_index('ix_bank_detail_changes_store_created', table_name='bank_detail_changes')
    op.drop_index('ix_bank_detail_changes_status_created', table_name='bank_detail_changes')
    op.drop_table('bank_detail_changes')
    op.drop_index('ix_stores_name_id', table_name='stores')
    op.drop_table('stores')
    op.drop_index(op.f('ix_outbox_started_at'), table_name='outbox')
    op.drop_table('outbox')
