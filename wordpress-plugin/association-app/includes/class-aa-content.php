<?php
/**
 * The content model the sync API serves: post types, the folder taxonomy, the association roles,
 * the plugin's meta keys (contract §9) and the member modification date WordPress lacks (§9.2).
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Content {

	/** Entity type => post types behind it (members are users). */
	const ENTITY_POST_TYPES = array(
		'article'      => array( 'post' ),
		'event'        => array( 'event' ),
		'document'     => array( 'document', 'policy', 'recall' ),
		'conference'   => array( 'conference' ),
		'company'      => array( 'company' ),
		'notification' => array( 'notification' ),
	);

	/** Post statuses the list endpoints serve (§5.3). */
	const SERVED_STATUSES   = array( 'publish', 'future', 'draft', 'pending', 'private' );
	const WRITABLE_STATUSES = array( 'publish', 'draft', 'pending', 'private' );

	const MEMBER_MODIFIED_META = '_association_modified_gmt';

	/** User meta whose change bumps the member's modified_gmt (§9.2). */
	const MEMBER_META = array(
		'first_name',
		'last_name',
		'_association_phone',
		'_association_job_title',
		'_association_company',
		'_association_address_street',
		'_association_address_city',
		'_association_address_postcode',
		'_association_address_country',
		'_association_certifications',
	);

	/** Post type => meta key => [type, label] (type: string|text|gmt|date|int|url|enum:a,b). */
	public static function post_meta_fields() {
		$address = function ( $prefix ) {
			return array(
				$prefix . '_street'   => array( 'text', __( 'Street', 'association-app' ) ),
				$prefix . '_city'     => array( 'string', __( 'City', 'association-app' ) ),
				$prefix . '_postcode' => array( 'string', __( 'Postcode', 'association-app' ) ),
				$prefix . '_country'  => array( 'string', __( 'Country (ISO code, e.g. DE)', 'association-app' ) ),
			);
		};
		$document = array(
			'_association_file_id'      => array( 'int', __( 'Attached file (attachment ID)', 'association-app' ) ),
			'_association_access_level' => array( 'enum:members,public,admins', __( 'Access level', 'association-app' ) ),
		);
		return array(
			'event'        => array_merge(
				array(
					'_association_event_start_gmt'        => array( 'gmt', __( 'Start (UTC)', 'association-app' ) ),
					'_association_event_end_gmt'          => array( 'gmt', __( 'End (UTC)', 'association-app' ) ),
					'_association_event_timezone'         => array( 'string', __( 'Time zone (e.g. Europe/Berlin)', 'association-app' ) ),
					'_association_event_venue'            => array( 'string', __( 'Venue', 'association-app' ) ),
					'_association_event_capacity'         => array( 'int', __( 'Capacity', 'association-app' ) ),
					'_association_event_registration_url' => array( 'url', __( 'Registration URL', 'association-app' ) ),
				),
				$address( '_association_event_address' )
			),
			'conference'   => array(
				'_association_conference_start_date' => array( 'date', __( 'Start date', 'association-app' ) ),
				'_association_conference_end_date'   => array( 'date', __( 'End date', 'association-app' ) ),
				'_association_conference_venue'      => array( 'string', __( 'Venue', 'association-app' ) ),
				'_association_conference_city'       => array( 'string', __( 'City', 'association-app' ) ),
				'_association_conference_country'    => array( 'string', __( 'Country (ISO code)', 'association-app' ) ),
				'_association_conference_website'    => array( 'url', __( 'Website', 'association-app' ) ),
			),
			'document'     => $document,
			'policy'       => $document,
			'recall'       => $document,
			'company'      => array(
				'_association_company_website'  => array( 'url', __( 'Website', 'association-app' ) ),
				'_association_company_industry' => array( 'string', __( 'Industry', 'association-app' ) ),
			),
			'notification' => array(
				'_association_notification_audience'    => array( 'enum:members,all,admins', __( 'Audience', 'association-app' ) ),
				'_association_notification_send_at_gmt' => array( 'gmt', __( 'Send at (UTC, empty = on publish)', 'association-app' ) ),
				'_association_notification_priority'    => array( 'enum:normal,low,high,urgent', __( 'Priority', 'association-app' ) ),
			),
		);
	}

	public static function init() {
		add_action( 'init', array( __CLASS__, 'register_types' ) );
		add_action( 'init', array( __CLASS__, 'register_meta' ) );

		add_filter( 'wp_insert_post_data', array( __CLASS__, 'fill_modified_gmt' ), 99 );

		add_action( 'user_register', array( __CLASS__, 'touch_member' ) );
		add_action( 'profile_update', array( __CLASS__, 'touch_member' ) );
		add_action( 'set_user_role', array( __CLASS__, 'touch_member' ) );
		add_action( 'add_user_role', array( __CLASS__, 'touch_member' ) );
		add_action( 'remove_user_role', array( __CLASS__, 'touch_member' ) );
		add_action( 'added_user_meta', array( __CLASS__, 'member_meta_changed' ), 10, 3 );
		add_action( 'updated_user_meta', array( __CLASS__, 'member_meta_changed' ), 10, 3 );
		add_action( 'deleted_user_meta', array( __CLASS__, 'member_meta_changed' ), 10, 3 );
	}

	public static function register_types() {
		$labels = array(
			'event'        => array( __( 'Events', 'association-app' ), __( 'Event', 'association-app' ), 'events' ),
			'conference'   => array( __( 'Conferences', 'association-app' ), __( 'Conference', 'association-app' ), 'conferences' ),
			'document'     => array( __( 'Documents', 'association-app' ), __( 'Document', 'association-app' ), 'documents' ),
			'policy'       => array( __( 'Policies', 'association-app' ), __( 'Policy', 'association-app' ), 'policies' ),
			'recall'       => array( __( 'Recalls', 'association-app' ), __( 'Recall', 'association-app' ), 'recalls' ),
			'company'      => array( __( 'Companies', 'association-app' ), __( 'Company', 'association-app' ), 'companies' ),
			'notification' => array( __( 'Notifications', 'association-app' ), __( 'Notification', 'association-app' ), 'notifications' ),
		);
		foreach ( $labels as $type => $l ) {
			if ( post_type_exists( $type ) ) {
				continue;
			}
			register_post_type(
				$type,
				array(
					'labels'       => array(
						'name'          => $l[0],
						'singular_name' => $l[1],
					),
					'public'       => true,
					'show_in_rest' => true,
					'has_archive'  => true,
					'rewrite'      => array( 'slug' => $l[2] ),
					'supports'     => array( 'title', 'editor', 'excerpt', 'thumbnail', 'author', 'revisions', 'custom-fields' ),
					'menu_icon'    => 'dashicons-groups',
				)
			);
		}
		if ( ! taxonomy_exists( 'folder' ) ) {
			register_taxonomy(
				'folder',
				array( 'document', 'policy', 'recall' ),
				array(
					'labels'            => array(
						'name'          => __( 'Folders', 'association-app' ),
						'singular_name' => __( 'Folder', 'association-app' ),
					),
					'hierarchical'      => true,
					'public'            => true,
					'show_in_rest'      => true,
					'show_admin_column' => true,
					'rewrite'           => array( 'slug' => 'folder' ),
				)
			);
		}
	}

	public static function register_meta() {
		$can_edit = function () {
			return current_user_can( 'edit_posts' );
		};
		foreach ( self::post_meta_fields() as $post_type => $fields ) {
			foreach ( $fields as $key => $spec ) {
				register_post_meta(
					$post_type,
					$key,
					array(
						'type'          => 'int' === $spec[0] ? 'integer' : 'string',
						'single'        => true,
						'description'   => $spec[1],
						'auth_callback' => $can_edit,
					)
				);
			}
		}
	}

	public static function add_roles() {
		add_role( 'member', __( 'Member', 'association-app' ), array( 'read' => true ) );
		add_role( 'pending_member', __( 'Pending member', 'association-app' ), array( 'read' => true ) );
		add_role( 'lapsed_member', __( 'Lapsed member', 'association-app' ), array( 'read' => true ) );
	}

	/** Sets the member's modification date to now (§9.2). */
	public static function touch_member( $user_id ) {
		$user_id = (int) $user_id;
		if ( $user_id > 0 ) {
			update_user_meta( $user_id, self::MEMBER_MODIFIED_META, gmdate( 'Y-m-d H:i:s' ) );
		}
	}

	public static function member_meta_changed( $meta_id, $user_id, $meta_key ) {
		if ( in_array( $meta_key, self::MEMBER_META, true ) ) {
			self::touch_member( $user_id );
		}
	}

	/** Activation: every user without the meta gets user_registered (one INSERT ... SELECT). */
	public static function backfill_member_modified() {
		global $wpdb;
		$wpdb->query(
			$wpdb->prepare(
				"INSERT INTO {$wpdb->usermeta} (user_id, meta_key, meta_value)
				 SELECT u.ID, %s, u.user_registered FROM {$wpdb->users} u
				 LEFT JOIN {$wpdb->usermeta} m ON m.user_id = u.ID AND m.meta_key = %s
				 WHERE m.umeta_id IS NULL",
				self::MEMBER_MODIFIED_META,
				self::MEMBER_MODIFIED_META
			)
		);
		wp_cache_flush();
	}

	/**
	 * WordPress leaves post_modified_gmt at zero when it creates a draft (no date yet): such a
	 * record would sort first and never pass a modified_after filter. Store the real time.
	 */
	public static function fill_modified_gmt( $data ) {
		if ( empty( $data['post_modified_gmt'] ) || '0000-00-00 00:00:00' === $data['post_modified_gmt'] ) {
			$data['post_modified_gmt'] = current_time( 'mysql', true );
		}
		return $data;
	}

	/** Activation: the same for drafts saved before the plugin was active. */
	public static function backfill_post_modified() {
		global $wpdb;
		$rows = $wpdb->get_results( "SELECT ID, post_modified FROM {$wpdb->posts} WHERE post_modified_gmt = '0000-00-00 00:00:00' AND post_modified <> '0000-00-00 00:00:00'" );
		foreach ( $rows as $row ) {
			$wpdb->update( $wpdb->posts, array( 'post_modified_gmt' => get_gmt_from_date( $row->post_modified ) ), array( 'ID' => $row->ID ) );
			clean_post_cache( $row->ID );
		}
	}

	/** Entity type of a post type among the served ones, or null. */
	public static function entity_of_post_type( $post_type ) {
		foreach ( self::ENTITY_POST_TYPES as $entity => $types ) {
			if ( in_array( $post_type, $types, true ) ) {
				return in_array( $entity, AA_Settings::entity_types(), true ) ? $entity : null;
			}
		}
		return null;
	}
}
