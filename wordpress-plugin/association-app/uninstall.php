<?php
/**
 * Uninstall (Plugins → Delete): removes the plugin's settings, key hash, a generated key still
 * waiting to be shown, the deletions and changes logs and the member modification dates. Posts, users, their meta and the roles stay: they are the site's
 * content, and other code may rely on them.
 */

if ( ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

global $wpdb;

foreach ( array(
	'association_app_sync_enabled',
	'association_app_sync_key_hash',
	'association_app_sync_key_salt',
	'association_app_sync_key_created_gmt',
	'association_app_rate_limit',
	'association_app_entity_types',
	'association_app_sync_user',
	'association_app_rate_log',
	'association_app_rate_window',
	'association_app_db_version',
	'association_app_changes_pruned_seq',
	'association_app_push_subscriptions',
) as $option ) {
	delete_option( $option );
}
// A key generated in the last minutes and not yet shown waits in a per-user transient.
$wpdb->query( $wpdb->prepare( "DELETE FROM {$wpdb->options} WHERE option_name LIKE %s OR option_name LIKE %s", $wpdb->esc_like( '_transient_association_app_new_key_' ) . '%', $wpdb->esc_like( '_transient_timeout_association_app_new_key_' ) . '%' ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}association_sync_deletions" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}association_sync_changes" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
delete_metadata( 'user', 0, '_association_modified_gmt', '', true );
