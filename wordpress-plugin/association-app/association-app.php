<?php
/**
 * Plugin Name:       Association App
 * Description:       Connects this site to the Association App platform: a keyed JSON sync API (contract v1) for articles, members, events, documents, conferences, companies and notifications.
 * Version:           1.2.0
 * Requires at least: 6.0
 * Requires PHP:      7.4
 * Author:            Association App
 * License:           GPL-2.0-or-later
 * Text Domain:       association-app
 *
 * The API contract is docs/wordpress-sync-api.md of the platform repository (version 1).
 * Routes live in the REST namespace association-app/v1 and, through a rewrite rule, under
 * {home}/api/v1/sync/ (the URL the platform uses).
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'ASSOCIATION_APP_VERSION', '1.2.0' );
define( 'ASSOCIATION_APP_CONTRACT_VERSION', 1 );
define( 'ASSOCIATION_APP_FILE', __FILE__ );
define( 'ASSOCIATION_APP_NAMESPACE', 'association-app/v1' );

require_once __DIR__ . '/includes/class-aa-settings.php';
require_once __DIR__ . '/includes/class-aa-content.php';
require_once __DIR__ . '/includes/class-aa-deletions.php';
require_once __DIR__ . '/includes/class-aa-changes.php';
require_once __DIR__ . '/includes/class-aa-push.php';
require_once __DIR__ . '/includes/class-aa-render.php';
require_once __DIR__ . '/includes/class-aa-entities.php';
require_once __DIR__ . '/includes/class-aa-api.php';
require_once __DIR__ . '/includes/class-aa-admin.php';

AA_Content::init();
AA_Deletions::init();
AA_Changes::init();
AA_Api::init();
if ( is_admin() ) {
	AA_Admin::init();
}

register_activation_hook( __FILE__, 'association_app_activate' );
register_deactivation_hook( __FILE__, 'association_app_deactivate' );

/**
 * Activation: roles, the deletions and changes tables, default settings, member modification dates,
 * and the rewrite rules for /api/v1/sync/ (registered first, then flushed).
 */
function association_app_activate() {
	AA_Content::add_roles();
	AA_Deletions::install_table();
	AA_Settings::install_defaults();
	AA_Content::backfill_member_modified();
	AA_Content::backfill_post_modified();
	AA_Content::register_types();
	AA_Api::add_rewrite_rules();
	flush_rewrite_rules();
}

/** Deactivation: drop the /api/v1/sync/ rule (registered on this request's init) and flush. */
function association_app_deactivate() {
	global $wp_rewrite;
	unset( $wp_rewrite->extra_rules_top['^api/v1/sync/(.*)$'] );
	flush_rewrite_rules();
}

/**
 * Generates a new Sync API key, stores only its salted hash and returns the key (shown once).
 * Also usable from WP-CLI / a PHP bootstrap: `echo association_app_generate_key();`.
 */
function association_app_generate_key() {
	return AA_Settings::generate_key();
}
