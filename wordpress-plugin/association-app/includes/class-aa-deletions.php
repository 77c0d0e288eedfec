<?php
/**
 * The deletions log (contract §8): WordPress keeps no record of deleted posts or users, so the
 * plugin appends one row per deletion to {prefix}association_sync_deletions.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Deletions {

	const DB_VERSION     = '3'; // 3: the change log (AA_Changes, contract 1.2)
	const OPT_DB_VERSION = 'association_app_db_version';

	/** (entity_type:id) pairs recorded in this request: trashing fires two of our hooks. */
	private static $recorded = array();

	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'association_sync_deletions';
	}

	public static function init() {
		add_action( 'plugins_loaded', array( __CLASS__, 'maybe_upgrade' ) );
		add_action( 'wp_trash_post', array( __CLASS__, 'on_trash' ) );
		add_action( 'before_delete_post', array( __CLASS__, 'on_delete_post' ), 10, 2 );
		add_action( 'post_updated', array( __CLASS__, 'on_post_updated' ), 10, 3 );
		add_action( 'deleted_user', array( __CLASS__, 'on_delete_user' ) );
		add_action( 'remove_user_from_blog', array( __CLASS__, 'on_remove_user_from_blog' ), 10, 2 );
	}

	public static function install_table() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$charset = $wpdb->get_charset_collate();
		$table   = self::table();
		// The (deleted_gmt, object_id) key serves the feed's filter and order (§8.2); the
		// (entity_type, deleted_gmt, object_id) key one type's share of it, inline with a
		// list page (§5.6), without reading the other types' entries.
		dbDelta(
			"CREATE TABLE {$table} (
  entry_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  entity_type varchar(20) NOT NULL,
  object_id bigint(20) unsigned NOT NULL,
  deleted_gmt datetime NOT NULL,
  PRIMARY KEY  (entry_id),
  KEY deleted (deleted_gmt,object_id),
  KEY entity_deleted (entity_type,deleted_gmt,object_id)
) {$charset};"
		);
		// The plugin's other table: one db version and one upgrade path for both, so an
		// existing site that gets new plugin files (no activation) creates it on the next
		// request (maybe_upgrade).
		AA_Changes::install_table();
		update_option( self::OPT_DB_VERSION, self::DB_VERSION );
	}

	public static function maybe_upgrade() {
		if ( get_option( self::OPT_DB_VERSION ) !== self::DB_VERSION ) {
			self::install_table();
		}
	}

	public static function record( $entity_type, $object_id ) {
		global $wpdb;
		$marker = $entity_type . ':' . (int) $object_id;
		if ( isset( self::$recorded[ $marker ] ) ) {
			return;
		}
		self::$recorded[ $marker ] = true;
		AA_Push::changed();
		$now                       = gmdate( 'Y-m-d H:i:s' );
		$wpdb->insert(
			self::table(),
			array(
				'entity_type' => $entity_type,
				'object_id'   => (int) $object_id,
				'deleted_gmt' => $now,
			),
			array( '%s', '%d', '%s' )
		);
		// Retention (§8.2): prune on write, an indexed range delete, so no cron is needed.
		$wpdb->query(
			$wpdb->prepare(
				'DELETE FROM ' . self::table() . ' WHERE deleted_gmt < %s',
				gmdate( 'Y-m-d H:i:s', time() - AA_Settings::RETENTION_DAYS * DAY_IN_SECONDS )
			)
		);
	}

	/**
	 * One entity type's entries after $since ("Y-m-d H:i:s"), in the feed's order, at most
	 * $limit of them (contract 1.1, §5.6). Returns array( entries, whether there are more ).
	 */
	public static function since( $entity_type, $since, $limit ) {
		global $wpdb;
		$table = self::table();
		// One row past the cap tells whether there are more, without a COUNT.
		$rows  = $wpdb->get_results(
			$wpdb->prepare(
				"SELECT object_id, deleted_gmt FROM {$table} WHERE entity_type = %s AND deleted_gmt > %s ORDER BY deleted_gmt ASC, object_id ASC, entry_id ASC LIMIT %d", // phpcs:ignore WordPress.DB.PreparedSQL
				$entity_type,
				$since,
				$limit + 1
			)
		);
		$items = array();
		foreach ( array_slice( $rows, 0, $limit ) as $row ) {
			$items[] = array(
				'id'          => (int) $row->object_id,
				'deleted_gmt' => str_replace( ' ', 'T', $row->deleted_gmt ),
			);
		}
		return array( $items, count( $rows ) > $limit );
	}

	private static function served_entity( $post, $extra_statuses = array() ) {
		if ( ! $post ) {
			return null;
		}
		$statuses = array_merge( AA_Content::SERVED_STATUSES, $extra_statuses );
		if ( ! in_array( $post->post_status, $statuses, true ) ) {
			return null;
		}
		return AA_Content::entity_of_post_type( $post->post_type );
	}

	public static function on_trash( $post_id ) {
		$entity = self::served_entity( get_post( $post_id ) );
		if ( $entity ) {
			self::record( $entity, $post_id );
		}
	}

	public static function on_delete_post( $post_id, $post = null ) {
		$entity = self::served_entity( $post ? $post : get_post( $post_id ), array( 'trash' ) );
		if ( $entity ) {
			// Deliberately not deduplicated against a trash in the same request: harmless (§8.1).
			unset( self::$recorded[ $entity . ':' . (int) $post_id ] );
			self::record( $entity, $post_id );
		}
	}

	/** A served post that leaves its entity type (post type change) or goes to the trash. */
	public static function on_post_updated( $post_id, $after, $before ) {
		$old = self::served_entity( $before );
		if ( ! $old ) {
			return;
		}
		$new = AA_Content::entity_of_post_type( $after->post_type );
		if ( $new !== $old || 'trash' === $after->post_status ) {
			self::record( $old, $post_id );
		}
	}

	public static function on_delete_user( $user_id ) {
		if ( in_array( 'member', AA_Settings::entity_types(), true ) ) {
			self::record( 'member', $user_id );
		}
	}

	public static function on_remove_user_from_blog( $user_id, $blog_id ) {
		if ( (int) $blog_id === get_current_blog_id() ) {
			self::on_delete_user( $user_id );
		}
	}
}
