<?php
/**
 * The change log (contract 1.2, §5.7): one row per change WordPress makes to a served record,
 * numbered by a sequence, in {prefix}association_sync_changes.
 *
 * Why: a record's modified_gmt is not a change log. WordPress's cron publishes a scheduled post
 * with wp_publish_post(), which leaves modified_gmt alone; meta and term changes made outside a
 * post save (update_post_meta, wp_set_object_terms, a renamed category, a replaced featured
 * image) touch no date at all. The plugin therefore records, from WordPress's own hooks, which
 * record changed, and the list endpoints serve the ids changed after the platform's position
 * in this sequence. The platform fetches those records by id: it never depends on a code path
 * remembering to bump a date.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Changes {

	/**
	 * Entries younger than this are not served yet. An entry's number is given when its INSERT
	 * starts and becomes visible when it commits, so a later number can be visible before an
	 * earlier one; a reader that moved past the later one would never see the earlier one. Every
	 * INSERT here is its own autocommit statement (WordPress runs no transactions), committed
	 * within milliseconds of its stamp: waiting this long before serving an entry makes the
	 * sequence gap-free for the reader (§5.7).
	 */
	const SETTLE_SECONDS = 10;
	/** At most this many entries per answer (the client fetches their records in one request). */
	const MAX_ENTRIES = 100;
	/** The highest sequence number retention has deleted (§5.7 change_log_from). */
	const OPT_PRUNED = 'association_app_changes_pruned_seq';

	/** Post meta WordPress rewrites while nothing a record serves changes (editor locks...). */
	const IGNORED_POST_META = array( '_edit_lock', '_edit_last', '_wp_old_slug', '_wp_old_date', '_encloseme', '_pingme', '_wp_trash_meta_status', '_wp_trash_meta_time', '_wp_desired_post_slug' );

	/** Attachment meta a record shows (its URL, file name, size). */
	const MEDIA_META = array( '_wp_attached_file', '_wp_attachment_metadata' );

	/** entity:id => the second it was last recorded in this request (see record()). */
	private static $recorded = array();
	private static $pruned   = false;

	public static function table() {
		global $wpdb;
		return $wpdb->prefix . 'association_sync_changes';
	}

	public static function init() {
		// Posts: every wp_insert_post() (editor saves, PUTs, untrash) and wp_publish_post()
		// (the cron's scheduled publishing, which does not touch modified_gmt) pass here.
		add_action( 'transition_post_status', array( __CLASS__, 'on_status' ), 10, 3 );
		add_action( 'added_post_meta', array( __CLASS__, 'on_post_meta' ), 10, 3 );
		add_action( 'updated_post_meta', array( __CLASS__, 'on_post_meta' ), 10, 3 );
		add_action( 'deleted_post_meta', array( __CLASS__, 'on_post_meta' ), 10, 3 );
		add_action( 'set_object_terms', array( __CLASS__, 'on_object_terms' ), 10, 4 );
		add_action( 'edited_term', array( __CLASS__, 'on_term_edited' ), 10, 3 );
		add_action( 'attachment_updated', array( __CLASS__, 'on_attachment' ) );
		add_action( 'delete_attachment', array( __CLASS__, 'on_attachment' ) );
		// Users: creation, profile and role changes, served meta.
		add_action( 'user_register', array( __CLASS__, 'on_user' ) );
		add_action( 'profile_update', array( __CLASS__, 'on_user' ) );
		add_action( 'set_user_role', array( __CLASS__, 'on_user' ) );
		add_action( 'add_user_role', array( __CLASS__, 'on_user' ) );
		add_action( 'remove_user_role', array( __CLASS__, 'on_user' ) );
		add_action( 'added_user_meta', array( __CLASS__, 'on_user_meta' ), 10, 3 );
		add_action( 'updated_user_meta', array( __CLASS__, 'on_user_meta' ), 10, 3 );
		add_action( 'deleted_user_meta', array( __CLASS__, 'on_user_meta' ), 10, 3 );
	}

	/** Called by AA_Deletions::install_table() (activation and the db-version upgrade). */
	public static function install_table() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$charset = $wpdb->get_charset_collate();
		$table   = self::table();
		// (entity_type, seq) serves one type's entries after a number; (changed_gmt) retention.
		dbDelta(
			"CREATE TABLE {$table} (
  seq bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  entity_type varchar(20) NOT NULL,
  object_id bigint(20) unsigned NOT NULL,
  changed_gmt datetime NOT NULL,
  PRIMARY KEY  (seq),
  KEY entity_seq (entity_type,seq),
  KEY changed (changed_gmt)
) {$charset};"
		);
	}

	// ------------------------------------------------------------------ recording

	public static function record( $entity_type, $object_id ) {
		global $wpdb;
		$object_id = (int) $object_id;
		if ( ! $entity_type || $object_id <= 0 ) {
			return;
		}
		// One save fires several of these hooks; one entry per record per second is enough,
		// because the platform reads the record SETTLE_SECONDS after the entry's stamp, when
		// every change of that second is committed. A later second gets its own entry, so a
		// long request (an import) cannot hide a change behind an entry already read.
		$now    = time();
		$marker = $entity_type . ':' . $object_id;
		if ( isset( self::$recorded[ $marker ] ) && self::$recorded[ $marker ] === $now ) {
			return;
		}
		self::$recorded[ $marker ] = $now;
		AA_Push::changed();
		$wpdb->insert(
			self::table(),
			array(
				'entity_type' => $entity_type,
				'object_id'   => $object_id,
				'changed_gmt' => gmdate( 'Y-m-d H:i:s', $now ),
			),
			array( '%s', '%d', '%s' )
		);
		if ( ! self::$pruned ) {
			self::$pruned = true;
			self::prune();
		}
	}

	/** Retention, as for deletions: once per request, an indexed range read and delete. */
	private static function prune() {
		global $wpdb;
		$table  = self::table();
		$cutoff = gmdate( 'Y-m-d H:i:s', time() - AA_Settings::RETENTION_DAYS * DAY_IN_SECONDS );
		$max    = (int) $wpdb->get_var( $wpdb->prepare( "SELECT MAX(seq) FROM {$table} WHERE changed_gmt < %s", $cutoff ) ); // phpcs:ignore WordPress.DB.PreparedSQL
		if ( $max > 0 ) {
			$wpdb->query( $wpdb->prepare( "DELETE FROM {$table} WHERE seq <= %d", $max ) ); // phpcs:ignore WordPress.DB.PreparedSQL
			// Clients positioned before this number missed entries: they re-read the type (§5.7).
			update_option( self::OPT_PRUNED, max( $max, (int) get_option( self::OPT_PRUNED, 0 ) ), false );
		}
	}

	private static function post_entity( $post ) {
		$post = get_post( $post );
		if ( ! $post || ! in_array( $post->post_status, AA_Content::SERVED_STATUSES, true ) ) {
			return null; // trash, auto-draft, revisions: the deletions log or nothing (§8)
		}
		return AA_Content::entity_of_post_type( $post->post_type );
	}

	private static function record_post( $post ) {
		$post   = get_post( $post );
		$entity = $post ? self::post_entity( $post ) : null;
		if ( $entity ) {
			self::record( $entity, $post->ID );
		}
	}

	public static function on_status( $new_status, $old_status, $post ) {
		if ( in_array( $new_status, AA_Content::SERVED_STATUSES, true ) ) {
			self::record_post( $post );
		}
	}

	public static function on_post_meta( $meta_ids, $object_id, $meta_key ) {
		if ( in_array( $meta_key, self::IGNORED_POST_META, true ) ) {
			return;
		}
		$post = get_post( $object_id );
		if ( ! $post ) {
			return;
		}
		if ( 'attachment' === $post->post_type ) {
			if ( in_array( $meta_key, self::MEDIA_META, true ) ) {
				self::on_attachment( $post->ID );
			}
			return;
		}
		self::record_post( $post );
	}

	public static function on_object_terms( $object_id, $terms, $tt_ids, $taxonomy ) {
		self::record_post( $object_id );
	}

	/**
	 * A renamed or moved term changes the records that list it (categories, tags) or show it in
	 * their folder path (every document below a folder), and none of their dates.
	 */
	public static function on_term_edited( $term_id, $tt_id, $taxonomy ) {
		global $wpdb;
		$term_ids = array( (int) $term_id );
		if ( 'folder' === $taxonomy ) {
			$children = get_term_children( (int) $term_id, 'folder' );
			if ( is_array( $children ) ) {
				$term_ids = array_merge( $term_ids, array_map( 'intval', $children ) );
			}
		}
		// One INSERT ... SELECT per entity type: renaming a category of thousands of posts
		// must not load them one by one in the editor's request.
		$table    = self::table();
		$now      = gmdate( 'Y-m-d H:i:s' );
		$statuses = "'" . implode( "','", AA_Content::SERVED_STATUSES ) . "'";
		foreach ( AA_Content::ENTITY_POST_TYPES as $entity => $post_types ) {
			if ( ! in_array( $entity, AA_Settings::entity_types(), true ) ) {
				continue;
			}
			$types = "'" . implode( "','", array_map( 'esc_sql', $post_types ) ) . "'";
			$wpdb->query(
				$wpdb->prepare(
					"INSERT INTO {$table} (entity_type, object_id, changed_gmt)
					 SELECT DISTINCT %s, p.ID, %s FROM {$wpdb->posts} p
					 INNER JOIN {$wpdb->term_relationships} r ON r.object_id = p.ID
					 INNER JOIN {$wpdb->term_taxonomy} t ON t.term_taxonomy_id = r.term_taxonomy_id
					 WHERE t.term_id IN (" . implode( ',', $term_ids ) . ")
					 AND p.post_type IN ({$types}) AND p.post_status IN ({$statuses})", // phpcs:ignore WordPress.DB.PreparedSQL
					$entity,
					$now
				)
			);
		}
	}

	/** An edited, replaced or deleted attachment changes the records that show it. */
	public static function on_attachment( $attachment_id ) {
		global $wpdb;
		$posts = $wpdb->get_col(
			$wpdb->prepare(
				"SELECT post_id FROM {$wpdb->postmeta} WHERE meta_key IN ('_thumbnail_id', '_association_file_id') AND meta_value = %s",
				(string) (int) $attachment_id
			)
		);
		foreach ( $posts as $post_id ) {
			self::record_post( (int) $post_id );
		}
	}

	public static function on_user( $user_id ) {
		if ( in_array( 'member', AA_Settings::entity_types(), true ) ) {
			self::record( 'member', $user_id );
		}
	}

	public static function on_user_meta( $meta_ids, $user_id, $meta_key ) {
		global $wpdb;
		$served = in_array( $meta_key, AA_Content::MEMBER_META, true )
			|| $wpdb->get_blog_prefix() . 'capabilities' === $meta_key;
		if ( $served ) {
			self::on_user( $user_id );
		}
	}

	// ------------------------------------------------------------------ serving

	/** The newest settled entry's number: where a reader that has read everything stands. */
	public static function head() {
		global $wpdb;
		$table   = self::table();
		$settled = gmdate( 'Y-m-d H:i:s', time() - self::SETTLE_SECONDS );
		// Walks the primary key from the newest entry, past the few unsettled ones.
		$seq = (int) $wpdb->get_var( $wpdb->prepare( "SELECT seq FROM {$table} WHERE changed_gmt <= %s ORDER BY seq DESC LIMIT 1", $settled ) ); // phpcs:ignore WordPress.DB.PreparedSQL
		return max( $seq, self::pruned() );
	}

	/** Entries numbered up to this were deleted by retention. */
	public static function pruned() {
		return (int) get_option( self::OPT_PRUNED, 0 );
	}

	/**
	 * One type's settled entries after $after, at most MAX_ENTRIES: array( ids in order of
	 * their first entry, the number to continue from, whether there are more ).
	 */
	public static function after( $entity_type, $after, $head ) {
		global $wpdb;
		$table = self::table();
		$rows  = $wpdb->get_results(
			$wpdb->prepare(
				"SELECT seq, object_id FROM {$table} WHERE entity_type = %s AND seq > %d AND seq <= %d ORDER BY seq ASC LIMIT %d", // phpcs:ignore WordPress.DB.PreparedSQL
				$entity_type,
				$after,
				$head,
				self::MAX_ENTRIES + 1
			)
		);
		$more = count( $rows ) > self::MAX_ENTRIES;
		$rows = array_slice( $rows, 0, self::MAX_ENTRIES );
		$ids  = array();
		foreach ( $rows as $row ) {
			$ids[ (int) $row->object_id ] = true;
		}
		$next = $more ? (int) end( $rows )->seq : (int) $head;
		return array( array_keys( $ids ), $next, $more );
	}
}
