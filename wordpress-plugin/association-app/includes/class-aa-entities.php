<?php
/**
 * Reading and writing the seven entity types (contract §9): batched queries with primed caches
 * (no query per record), the record shapes, and the partial update of §7.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Entities {

	/** Writable keys per entity type (§9, column W) => validation type. */
	const WRITABLE = array(
		'article'      => array(
			'title'      => 'string',
			'excerpt'    => 'string',
			'content'    => 'string',
			'status'     => 'status',
			'categories' => 'strlist',
			'tags'       => 'strlist',
		),
		'member'       => array(
			'first_name'     => 'nstring',
			'last_name'      => 'nstring',
			'display_name'   => 'name',
			'phone'          => 'nstring',
			'job_title'      => 'nstring',
			'company'        => 'nstring',
			'address'        => 'address',
			'certifications' => 'strlist',
		),
		'event'        => array(
			'title'            => 'string',
			'description'      => 'string',
			'status'           => 'status',
			'start_gmt'        => 'gmt',
			'end_gmt'          => 'gmt',
			'timezone'         => 'timezone',
			'venue'            => 'nstring',
			'address'          => 'address',
			'capacity'         => 'count',
			'registration_url' => 'url',
		),
		'document'     => array(
			'title'        => 'string',
			'status'       => 'status',
			'access_level' => 'enum:public,members,admins',
		),
		'conference'   => array(
			'title'       => 'string',
			'description' => 'string',
			'status'      => 'status',
			'start_date'  => 'date',
			'end_date'    => 'date',
			'venue'       => 'nstring',
			'city'        => 'nstring',
			'country'     => 'country',
			'website'     => 'url',
		),
		'company'      => array(
			'name'        => 'string',
			'status'      => 'status',
			'website'     => 'url',
			'industry'    => 'nstring',
			'description' => 'string',
		),
		'notification' => array(
			'title'         => 'string',
			'body'          => 'string',
			'status'        => 'status',
			'audience'      => 'enum:all,members,admins',
			'send_at_gmt'   => 'gmt',
			'priority'      => 'enum:low,normal,high,urgent',
		),
	);

	/** Record key => post meta key, per post-based entity type. */
	const POST_META = array(
		'event'        => array(
			'start_gmt'        => '_association_event_start_gmt',
			'end_gmt'          => '_association_event_end_gmt',
			'timezone'         => '_association_event_timezone',
			'venue'            => '_association_event_venue',
			'capacity'         => '_association_event_capacity',
			'registration_url' => '_association_event_registration_url',
			'address'          => '_association_event_address',
		),
		'document'     => array(
			'access_level' => '_association_access_level',
		),
		'conference'   => array(
			'start_date' => '_association_conference_start_date',
			'end_date'   => '_association_conference_end_date',
			'venue'      => '_association_conference_venue',
			'city'       => '_association_conference_city',
			'country'    => '_association_conference_country',
			'website'    => '_association_conference_website',
		),
		'company'      => array(
			'website'  => '_association_company_website',
			'industry' => '_association_company_industry',
		),
		'notification' => array(
			'audience'    => '_association_notification_audience',
			'send_at_gmt' => '_association_notification_send_at_gmt',
			'priority'    => '_association_notification_priority',
		),
	);

	/** Record key => user meta key for members. */
	const MEMBER_META = array(
		'first_name'     => 'first_name',
		'last_name'      => 'last_name',
		'phone'          => '_association_phone',
		'job_title'      => '_association_job_title',
		'company'        => '_association_company',
		'address'        => '_association_address',
		'certifications' => '_association_certifications',
	);

	const ADDRESS_KEYS = array( 'street', 'city', 'postcode', 'country' );

	const GMT_RE  = '/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z?$/';
	const DATE_RE = '/^(\d{4})-(\d{2})-(\d{2})$/';

	// ------------------------------------------------------------------ dates

	/** A contract timestamp ("…T…" with optional Z) as MySQL "Y-m-d H:i:s", or null if invalid. */
	public static function parse_gmt( $value ) {
		if ( ! is_string( $value ) || ! preg_match( self::GMT_RE, $value, $m ) ) {
			return null;
		}
		if ( ! checkdate( (int) $m[2], (int) $m[3], (int) $m[1] ) || (int) $m[4] > 23 || (int) $m[5] > 59 || (int) $m[6] > 59 ) {
			return null;
		}
		return "{$m[1]}-{$m[2]}-{$m[3]} {$m[4]}:{$m[5]}:{$m[6]}";
	}

	/** Stored "Y-m-d H:i:s" (or a contract form) => "Y-m-d\TH:i:s"; zero/invalid => null. */
	public static function gmt_out( $stored ) {
		if ( ! is_string( $stored ) || '' === $stored || 0 === strpos( $stored, '0000-00-00' ) ) {
			return null;
		}
		$mysql = self::parse_gmt( str_replace( ' ', 'T', trim( $stored ) ) );
		return null === $mysql ? null : str_replace( ' ', 'T', $mysql );
	}

	public static function valid_date( $value ) {
		return is_string( $value ) && preg_match( self::DATE_RE, $value, $m ) && checkdate( (int) $m[2], (int) $m[3], (int) $m[1] );
	}

	private static function nullable( $value ) {
		if ( null === $value || false === $value ) {
			return null;
		}
		$value = is_scalar( $value ) ? (string) $value : '';
		return '' === $value ? null : $value;
	}

	// ------------------------------------------------------------------ listing

	/**
	 * One page of an entity type, ordered by (modified_gmt, id) ascending (§5.4).
	 *
	 * @return array [records, total]
	 */
	public static function list_page( $entity, $page, $per_page, $modified_after, $after_id, $include = null ) {
		if ( 'member' === $entity ) {
			return self::list_members( $page, $per_page, $modified_after, $after_id, $include );
		}
		global $wpdb;
		$types    = AA_Content::ENTITY_POST_TYPES[ $entity ];
		$where    = self::in_clause( 'post_type', $types ) . ' AND ' . self::in_clause( 'post_status', AA_Content::SERVED_STATUSES );
		$modified = self::post_modified_sql();
		$where   .= self::keyset_clause( $modified, 'ID', $modified_after, $after_id ) . self::include_clause( 'ID', $include );
		$total    = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$wpdb->posts} WHERE {$where}" ); // phpcs:ignore WordPress.DB.PreparedSQL
		$offset   = ( $page - 1 ) * $per_page;
		$records  = array();
		if ( $total > $offset ) {
			// Deferred join: sort narrow (id, time) rows, then load only the page's full rows.
			$ids = $wpdb->get_col(
				$wpdb->prepare(
					"SELECT ID FROM {$wpdb->posts} WHERE {$where} ORDER BY {$modified} ASC, ID ASC LIMIT %d, %d", // phpcs:ignore WordPress.DB.PreparedSQL
					$offset,
					$per_page
				)
			);
			if ( $ids ) {
				$ids  = array_map( 'intval', $ids );
				$rows = $wpdb->get_results( "SELECT * FROM {$wpdb->posts} WHERE ID IN (" . implode( ',', $ids ) . ')', OBJECT_K ); // phpcs:ignore WordPress.DB.PreparedSQL
				$page = array();
				foreach ( $ids as $id ) {
					if ( isset( $rows[ $id ] ) ) {
						$page[] = $rows[ $id ];
					}
				}
				$records = self::serialize_posts( $entity, $page );
			}
		}
		return array( $records, $total );
	}

	private static function list_members( $page, $per_page, $modified_after, $after_id, $include = null ) {
		global $wpdb;
		$modified = 'COALESCE(m.meta_value, u.user_registered)';
		$join     = $wpdb->prepare(
			"LEFT JOIN {$wpdb->usermeta} m ON m.user_id = u.ID AND m.meta_key = %s",
			AA_Content::MEMBER_MODIFIED_META
		);
		if ( is_multisite() ) {
			// Users of this blog are the ones holding its capabilities meta.
			$join .= $wpdb->prepare(
				" INNER JOIN {$wpdb->usermeta} c ON c.user_id = u.ID AND c.meta_key = %s",
				$wpdb->get_blog_prefix() . 'capabilities'
			);
		}
		$where   = '1=1' . self::keyset_clause( $modified, 'u.ID', $modified_after, $after_id ) . self::include_clause( 'u.ID', $include );
		$total   = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$wpdb->users} u {$join} WHERE {$where}" ); // phpcs:ignore WordPress.DB.PreparedSQL
		$offset  = ( $page - 1 ) * $per_page;
		$records = array();
		if ( $total > $offset ) {
			$ids     = $wpdb->get_col(
				$wpdb->prepare(
					"SELECT u.ID FROM {$wpdb->users} u {$join} WHERE {$where} ORDER BY {$modified} ASC, u.ID ASC LIMIT %d, %d", // phpcs:ignore WordPress.DB.PreparedSQL
					$offset,
					$per_page
				)
			);
			$records = self::serialize_members( array_map( 'intval', $ids ) );
		}
		return array( $records, $total );
	}

	/**
	 * The post's modification time in GMT as SQL. WordPress stores a zero post_modified_gmt for
	 * a draft that was created and never updated (its post_date_gmt is zero too); the plugin
	 * fills it on save (AA_Content::fill_modified_gmt) and on activation, and this fallback keeps
	 * rows written around WordPress in order and filterable, consistent with modified_fallback().
	 */
	private static function post_modified_sql() {
		return sprintf(
			"IF(post_modified_gmt = '0000-00-00 00:00:00', post_modified - INTERVAL %d SECOND, post_modified_gmt)",
			self::gmt_offset_seconds()
		);
	}

	private static function gmt_offset_seconds() {
		return (int) round( (float) get_option( 'gmt_offset' ) * HOUR_IN_SECONDS );
	}

	private static function modified_fallback( $post ) {
		$local = strtotime( $post->post_modified . ' UTC' );
		return false === $local ? null : gmdate( 'Y-m-d\TH:i:s', $local - self::gmt_offset_seconds() );
	}

	private static function in_clause( $column, $values ) {
		global $wpdb;
		$placeholders = implode( ',', array_fill( 0, count( $values ), '%s' ) );
		return $wpdb->prepare( "{$column} IN ({$placeholders})", $values ); // phpcs:ignore WordPress.DB.PreparedSQL
	}

	/** Contract 1.2 (§5.7): only these ids (the records the change log named). */
	private static function include_clause( $id_col, $include ) {
		if ( null === $include ) {
			return '';
		}
		$ids = array_map( 'intval', (array) $include );
		return $ids ? " AND {$id_col} IN (" . implode( ',', $ids ) . ')' : ' AND 1=0';
	}

	/** modified > T, or with after_id the keyset form modified > T OR (modified = T AND id > after_id) (§5.1). */
	private static function keyset_clause( $modified_col, $id_col, $modified_after, $after_id ) {
		global $wpdb;
		if ( null === $modified_after ) {
			return '';
		}
		if ( null === $after_id ) {
			return $wpdb->prepare( " AND {$modified_col} > %s", $modified_after ); // phpcs:ignore WordPress.DB.PreparedSQL
		}
		return $wpdb->prepare(
			" AND ({$modified_col} > %s OR ({$modified_col} = %s AND {$id_col} > %d))", // phpcs:ignore WordPress.DB.PreparedSQL
			$modified_after,
			$modified_after,
			$after_id
		);
	}

	// ------------------------------------------------------------------ single records

	/** The served record of this entity type with this id, or null (§6). */
	public static function get_record( $entity, $id ) {
		if ( 'member' === $entity ) {
			$user = get_userdata( $id );
			if ( ! $user || ( is_multisite() && ! is_user_member_of_blog( $id ) ) ) {
				return null;
			}
			$records = self::serialize_members( array( (int) $id ) );
			return $records ? $records[0] : null;
		}
		$post = get_post( $id );
		if ( ! $post || ! in_array( $post->post_type, AA_Content::ENTITY_POST_TYPES[ $entity ], true )
			|| ! in_array( $post->post_status, AA_Content::SERVED_STATUSES, true ) ) {
			return null;
		}
		$records = self::serialize_posts( $entity, array( $post ) );
		return $records[0];
	}

	// ------------------------------------------------------------------ serialisation: posts

	/**
	 * Records of post rows. All the data a record needs is loaded up front, in a fixed number of
	 * queries for the whole page: posts, their meta and terms (update_post_caches), the
	 * attachments they point at, the folder tree and the authors.
	 */
	public static function serialize_posts( $entity, $rows ) {
		if ( ! $rows ) {
			return array();
		}
		$posts = array();
		foreach ( $rows as $row ) {
			$posts[] = $row instanceof WP_Post ? $row : new WP_Post( $row );
		}
		update_post_caches( $posts, 'any', true, true );

		$attachments = array();
		$authors     = array();
		foreach ( $posts as $post ) {
			$authors[] = (int) $post->post_author;
			foreach ( array( '_thumbnail_id', '_association_file_id' ) as $key ) {
				$att = (int) get_post_meta( $post->ID, $key, true );
				if ( $att > 0 ) {
					$attachments[] = $att;
				}
			}
		}
		if ( $attachments ) {
			_prime_post_caches( array_unique( $attachments ), false, true );
		}
		$authors = array_filter( array_unique( $authors ) );
		if ( $authors ) {
			cache_users( $authors );
		}
		if ( 'document' === $entity ) {
			// The whole folder tree in one query, so ancestor lookups hit the cache.
			get_terms(
				array(
					'taxonomy'               => 'folder',
					'hide_empty'             => false,
					'update_term_meta_cache' => false,
				)
			);
		}

		$plain_title = function () {
			return '%s';
		};
		add_filter( 'protected_title_format', $plain_title, 999 );
		add_filter( 'private_title_format', $plain_title, 999 );
		// The key grants full read access: password-protected content is served in full (§9.1).
		add_filter( 'post_password_required', '__return_false', 999 );

		global $post;
		$previous = $post;
		$records  = array();
		// Each record renders as it would alone, whatever precedes it (§5.8).
		AA_Render::start();
		foreach ( $posts as $item ) {
			AA_Render::begin( $item );
			/**
			 * Filters one record before it is served (e.g. to add site-specific keys, which the
			 * contract allows as additive changes). Removing or retyping contract keys breaks
			 * the platform's validation of the record.
			 *
			 * @param array   $record The record (contract §9).
			 * @param string  $entity Entity type.
			 * @param WP_Post $item   The post.
			 */
			$records[] = apply_filters( 'association_app_record', self::post_record( $entity, $item ), $entity, $item );
		}
		AA_Render::stop();
		$post = $previous; // phpcs:ignore WordPress.WP.GlobalVariablesOverride
		if ( $previous ) {
			setup_postdata( $previous );
		}

		remove_filter( 'protected_title_format', $plain_title, 999 );
		remove_filter( 'private_title_format', $plain_title, 999 );
		remove_filter( 'post_password_required', '__return_false', 999 );
		return $records;
	}

	private static function rendered_content( $post ) {
		return (string) apply_filters( 'the_content', $post->post_content );
	}

	private static function meta( $post_id, $key ) {
		return self::nullable( get_post_meta( $post_id, $key, true ) );
	}

	private static function post_address( $post_id, $prefix ) {
		$address = array();
		foreach ( self::ADDRESS_KEYS as $sub ) {
			$address[ $sub ] = self::meta( $post_id, $prefix . '_' . $sub );
		}
		return $address;
	}

	private static function term_names( $post, $taxonomy ) {
		$terms = get_the_terms( $post, $taxonomy );
		if ( ! $terms || is_wp_error( $terms ) ) {
			return array();
		}
		usort(
			$terms,
			function ( $a, $b ) {
				$cmp = strcasecmp( $a->name, $b->name );
				return 0 !== $cmp ? $cmp : $a->term_id - $b->term_id;
			}
		);
		return array_values( wp_list_pluck( $terms, 'name' ) );
	}

	private static function image_url( $attachment_id ) {
		if ( ! $attachment_id ) {
			return null;
		}
		$url = wp_get_attachment_image_url( $attachment_id, 'full' );
		return $url ? $url : null;
	}

	private static function post_record( $entity, $post ) {
		$id     = (int) $post->ID;
		// password_protected for every post type (contract 1.2, §9.0): the platform keeps a
		// protected post's body out of sight unless its connector says otherwise.
		$record = array(
			'id'                 => $id,
			'modified_gmt'       => self::gmt_out( $post->post_modified_gmt ),
			'date_gmt'           => self::gmt_out( $post->post_date_gmt ),
			'status'             => $post->post_status,
			'slug'               => $post->post_name,
			'link'               => (string) get_permalink( $post ),
			'password_protected' => '' !== $post->post_password,
		);
		if ( null === $record['modified_gmt'] ) {
			$record['modified_gmt'] = self::modified_fallback( $post );
		}
		$title = (string) get_the_title( $post );
		if ( 'company' === $entity ) {
			$record['name'] = $title;
		} else {
			$record['title'] = $title;
		}

		switch ( $entity ) {
			case 'article':
				$author                       = $post->post_author ? get_userdata( (int) $post->post_author ) : false;
				$record['excerpt']            = (string) apply_filters( 'the_excerpt', get_the_excerpt( $post ) );
				$record['content']            = self::rendered_content( $post );
				$record['author_id']          = $post->post_author ? (int) $post->post_author : null;
				$record['author_name']        = $author ? $author->display_name : null;
				$record['categories']         = self::term_names( $post, 'category' );
				$record['tags']               = self::term_names( $post, 'post_tag' );
				$record['featured_image_url'] = self::image_url( (int) get_post_thumbnail_id( $post ) );
				break;

			case 'event':
				$capacity                   = get_post_meta( $id, '_association_event_capacity', true );
				$record['description']      = self::rendered_content( $post );
				$record['start_gmt']        = self::gmt_out( get_post_meta( $id, '_association_event_start_gmt', true ) );
				$record['end_gmt']          = self::gmt_out( get_post_meta( $id, '_association_event_end_gmt', true ) );
				$record['timezone']         = self::meta( $id, '_association_event_timezone' );
				$record['venue']            = self::meta( $id, '_association_event_venue' );
				$record['address']          = self::post_address( $id, '_association_event_address' );
				$record['capacity']         = is_numeric( $capacity ) && (int) $capacity >= 0 ? (int) $capacity : null;
				$record['registration_url'] = self::meta( $id, '_association_event_registration_url' );
				break;

			case 'document':
				$segments                  = self::folder_segments( $post );
				$record['kind']            = $post->post_type;
				$record['folder_path']     = $segments ? implode( '/', $segments ) : null;
				$record['folder_segments'] = $segments;
				$record                   += self::file_fields( (int) get_post_meta( $id, '_association_file_id', true ) );
				$access                    = get_post_meta( $id, '_association_access_level', true );
				$record['access_level']    = in_array( $access, array( 'public', 'members', 'admins' ), true ) ? $access : 'members';
				break;

			case 'conference':
				foreach ( array( 'start_date', 'end_date' ) as $key ) {
					$value          = get_post_meta( $id, '_association_conference_' . $key, true );
					$record[ $key ] = self::valid_date( $value ) ? $value : null;
				}
				$record['venue']       = self::meta( $id, '_association_conference_venue' );
				$record['city']        = self::meta( $id, '_association_conference_city' );
				$record['country']     = self::meta( $id, '_association_conference_country' );
				$record['website']     = self::meta( $id, '_association_conference_website' );
				$record['description'] = self::rendered_content( $post );
				break;

			case 'company':
				$record['website']     = self::meta( $id, '_association_company_website' );
				$record['industry']    = self::meta( $id, '_association_company_industry' );
				$record['description'] = self::rendered_content( $post );
				$record['logo_url']    = self::image_url( (int) get_post_thumbnail_id( $post ) );
				break;

			case 'notification':
				$audience              = get_post_meta( $id, '_association_notification_audience', true );
				$priority              = get_post_meta( $id, '_association_notification_priority', true );
				$record['body']        = self::rendered_content( $post );
				$record['audience']    = in_array( $audience, array( 'all', 'members', 'admins' ), true ) ? $audience : 'members';
				$record['send_at_gmt'] = self::gmt_out( get_post_meta( $id, '_association_notification_send_at_gmt', true ) );
				$record['priority']    = in_array( $priority, array( 'low', 'normal', 'high', 'urgent' ), true ) ? $priority : 'normal';
				break;
		}
		return $record;
	}

	/** Names from the root down to the deepest folder term; ties => lowest term_id (§9.4). */
	private static function folder_segments( $post ) {
		$terms = get_the_terms( $post, 'folder' );
		if ( ! $terms || is_wp_error( $terms ) ) {
			return array();
		}
		$best = null;
		foreach ( $terms as $term ) {
			$chain = array_reverse( get_ancestors( $term->term_id, 'folder', 'taxonomy' ) );
			$depth = count( $chain );
			if ( null === $best || $depth > $best[0] || ( $depth === $best[0] && $term->term_id < $best[1] ) ) {
				$best = array( $depth, $term->term_id, $chain );
			}
		}
		$segments = array();
		foreach ( $best[2] as $ancestor_id ) {
			$ancestor = get_term( $ancestor_id, 'folder' );
			if ( $ancestor && ! is_wp_error( $ancestor ) ) {
				$segments[] = $ancestor->name;
			}
		}
		$segments[] = get_term( $best[1], 'folder' )->name;
		return $segments;
	}

	private static function file_fields( $attachment_id ) {
		$fields = array(
			'file_url'  => null,
			'file_name' => null,
			'mime_type' => null,
			'size'      => null,
		);
		$attachment = $attachment_id > 0 ? get_post( $attachment_id ) : null;
		if ( ! $attachment || 'attachment' !== $attachment->post_type ) {
			return $fields;
		}
		$url                 = wp_get_attachment_url( $attachment_id );
		$path                = get_attached_file( $attachment_id );
		$meta                = wp_get_attachment_metadata( $attachment_id );
		$fields['file_url']  = $url ? $url : null;
		$fields['file_name'] = $path ? wp_basename( $path ) : null;
		$fields['mime_type'] = self::nullable( $attachment->post_mime_type );
		if ( is_array( $meta ) && isset( $meta['filesize'] ) ) {
			$fields['size'] = (int) $meta['filesize'];
		} elseif ( $path && file_exists( $path ) ) {
			$fields['size'] = (int) filesize( $path );
		}
		return $fields;
	}

	// ------------------------------------------------------------------ serialisation: members

	public static function serialize_members( $ids ) {
		if ( ! $ids ) {
			return array();
		}
		cache_users( $ids ); // users + all their meta in two queries
		$records = array();
		foreach ( $ids as $id ) {
			$user = get_userdata( $id );
			if ( ! $user ) {
				continue;
			}
			$registered = self::gmt_out( $user->user_registered );
			$modified   = self::gmt_out( get_user_meta( $id, AA_Content::MEMBER_MODIFIED_META, true ) );
			$address    = array();
			foreach ( self::ADDRESS_KEYS as $sub ) {
				$address[ $sub ] = self::nullable( get_user_meta( $id, '_association_address_' . $sub, true ) );
			}
			$certs = get_user_meta( $id, '_association_certifications', true );
			if ( is_array( $certs ) ) {
				$certs = array_values( array_map( 'strval', array_filter( $certs, 'is_scalar' ) ) );
			} else {
				$certs = ( is_string( $certs ) && '' !== $certs ) ? array( $certs ) : array();
			}
			$record    = array(
				'id'             => (int) $id,
				'modified_gmt'   => $modified ? $modified : $registered,
				'username'       => $user->user_login,
				'email'          => $user->user_email,
				'first_name'     => self::nullable( get_user_meta( $id, 'first_name', true ) ),
				'last_name'      => self::nullable( get_user_meta( $id, 'last_name', true ) ),
				'display_name'   => '' !== $user->display_name ? $user->display_name : $user->user_login,
				'phone'          => self::nullable( get_user_meta( $id, '_association_phone', true ) ),
				'job_title'      => self::nullable( get_user_meta( $id, '_association_job_title', true ) ),
				'company'        => self::nullable( get_user_meta( $id, '_association_company', true ) ),
				'address'        => $address,
				'certifications' => $certs,
				'roles'          => array_values( (array) $user->roles ),
				'registered_gmt' => $registered,
			);
			$records[] = apply_filters( 'association_app_record', $record, 'member', $user );
		}
		return $records;
	}

	// ------------------------------------------------------------------ writing (§7)

	/**
	 * Validates a PUT body (a decoded JSON object) against the entity's writable keys.
	 *
	 * @return array [values (key => PHP value), if_unmodified_since (MySQL GMT or null), errors (key => [code, message])]
	 */
	public static function validate_body( $entity, $body ) {
		$spec   = self::WRITABLE[ $entity ];
		$values = array();
		$errors = array();
		$since  = null;
		foreach ( get_object_vars( $body ) as $key => $value ) {
			if ( 'if_unmodified_since' === $key ) {
				$since = self::parse_gmt( $value );
				if ( null === $since ) {
					$errors[ $key ] = array( 'rest_invalid_date', 'Invalid date.' );
				}
				continue;
			}
			if ( ! isset( $spec[ $key ] ) ) {
				$errors[ $key ] = array( 'rest_additional_properties_forbidden', sprintf( '%s is not a writable key of %s.', $key, $entity ) );
				continue;
			}
			$error = self::validate_value( $key, $spec[ $key ], $value );
			if ( null !== $error ) {
				$errors[ $key ] = $error;
			} else {
				$values[ $key ] = $value;
			}
		}
		if ( ! $values && ! $errors ) {
			$errors['body'] = array( 'rest_missing_callback_param', 'At least one writable key is required: ' . implode( ', ', array_keys( $spec ) ) . '.' );
		}
		return array( $values, $since, $errors );
	}

	private static function type_error( $key, $type ) {
		return array( 'rest_invalid_type', sprintf( '%1$s is not of type %2$s.', $key, $type ) );
	}

	private static function validate_value( $key, $type, $value ) {
		$nullable = in_array( $type, array( 'nstring', 'gmt', 'date', 'url', 'country', 'timezone', 'count' ), true );
		if ( null === $value ) {
			return $nullable ? null : array( 'rest_invalid_type', sprintf( '%s must not be null.', $key ) );
		}
		switch ( $type ) {
			case 'string':
			case 'nstring':
				return is_string( $value ) ? null : self::type_error( $key, 'string' );
			case 'name':
				if ( ! is_string( $value ) ) {
					return self::type_error( $key, 'string' );
				}
				return '' === trim( $value ) ? array( 'rest_invalid_param', sprintf( '%s must not be empty.', $key ) ) : null;
			case 'status':
				return in_array( $value, AA_Content::WRITABLE_STATUSES, true ) ? null
					: array( 'rest_not_in_enum', sprintf( '%1$s is not one of %2$s.', $key, implode( ', ', AA_Content::WRITABLE_STATUSES ) ) );
			case 'gmt':
				return null !== self::parse_gmt( $value ) ? null : array( 'rest_invalid_date', 'Invalid date.' );
			case 'date':
				return self::valid_date( $value ) ? null : array( 'rest_invalid_date', sprintf( '%s must be a date YYYY-MM-DD.', $key ) );
			case 'url':
				return self::valid_url( $value ) ? null : array( 'rest_invalid_url', sprintf( '%s must be an absolute http(s) URL.', $key ) );
			case 'country':
				return is_string( $value ) && preg_match( '/^[A-Z]{2}$/', $value ) ? null
					: array( 'rest_invalid_param', sprintf( '%s must be two upper-case letters (ISO 3166-1 alpha-2).', $key ) );
			case 'timezone':
				return is_string( $value ) && in_array( $value, timezone_identifiers_list(), true ) ? null
					: array( 'rest_invalid_param', sprintf( '%s must be a time zone name such as Europe/Berlin.', $key ) );
			case 'count':
				if ( ! is_int( $value ) ) {
					return self::type_error( $key, 'integer' );
				}
				return $value >= 0 ? null : array( 'rest_out_of_bounds', sprintf( '%s must be greater than or equal to 0', $key ) );
			case 'strlist':
				if ( ! is_array( $value ) || ( $value && array_keys( $value ) !== range( 0, count( $value ) - 1 ) ) ) {
					return self::type_error( $key, 'array' );
				}
				foreach ( $value as $item ) {
					if ( ! is_string( $item ) || '' === trim( $item ) ) {
						return array( 'rest_invalid_type', sprintf( '%s must be a list of non-empty strings.', $key ) );
					}
				}
				return null;
			case 'address':
				if ( ! is_object( $value ) ) {
					return self::type_error( $key, 'object' );
				}
				foreach ( get_object_vars( $value ) as $sub => $sub_value ) {
					if ( ! in_array( $sub, self::ADDRESS_KEYS, true ) ) {
						return array( 'rest_additional_properties_forbidden', sprintf( '%1$s.%2$s is not a valid address key.', $key, $sub ) );
					}
					if ( null !== $sub_value && ! is_string( $sub_value ) ) {
						return self::type_error( "{$key}.{$sub}", 'string' );
					}
					if ( 'country' === $sub && null !== $sub_value && ! preg_match( '/^[A-Z]{2}$/', $sub_value ) ) {
						return array( 'rest_invalid_param', sprintf( '%s.country must be two upper-case letters (ISO 3166-1 alpha-2).', $key ) );
					}
				}
				return null;
		}
		if ( 0 === strpos( $type, 'enum:' ) ) {
			$allowed = explode( ',', substr( $type, 5 ) );
			return in_array( $value, $allowed, true ) ? null
				: array( 'rest_not_in_enum', sprintf( '%1$s is not one of %2$s.', $key, implode( ', ', $allowed ) ) );
		}
		return array( 'rest_invalid_param', sprintf( 'Unknown validation for %s.', $key ) );
	}

	private static function valid_url( $value ) {
		if ( ! is_string( $value ) ) {
			return false;
		}
		$parts = wp_parse_url( $value );
		return is_array( $parts ) && isset( $parts['scheme'], $parts['host'] )
			&& in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true ) && '' !== $parts['host'];
	}

	/** Cross-field rules that need the stored record: end ≥ start after applying the update. */
	public static function cross_field_errors( $entity, $current, $values ) {
		$pairs = array(
			'event'      => array( 'start_gmt', 'end_gmt' ),
			'conference' => array( 'start_date', 'end_date' ),
		);
		if ( ! isset( $pairs[ $entity ] ) ) {
			return array();
		}
		list( $start_key, $end_key ) = $pairs[ $entity ];
		$start                       = array_key_exists( $start_key, $values ) ? $values[ $start_key ] : $current[ $start_key ];
		$end                         = array_key_exists( $end_key, $values ) ? $values[ $end_key ] : $current[ $end_key ];
		if ( 'event' === $entity ) {
			$start = null === $start ? null : self::parse_gmt( $start );
			$end   = null === $end ? null : self::parse_gmt( $end );
		}
		if ( null !== $start && null !== $end && strcmp( $end, $start ) < 0 ) {
			return array( $end_key => array( 'rest_out_of_bounds', sprintf( '%1$s must not be before %2$s.', $end_key, $start_key ) ) );
		}
		return array();
	}

	/** Applies validated values through WordPress APIs; always bumps modified_gmt (§7.3). */
	public static function apply( $entity, $id, $values ) {
		if ( 'member' === $entity ) {
			return self::apply_member( $id, $values );
		}
		$postarr = array( 'ID' => $id );
		$meta    = isset( self::POST_META[ $entity ] ) ? self::POST_META[ $entity ] : array();
		foreach ( $values as $key => $value ) {
			switch ( $key ) {
				case 'title':
				case 'name':
					$postarr['post_title'] = $value;
					break;
				case 'content':
				case 'description':
				case 'body':
					$postarr['post_content'] = $value;
					break;
				case 'excerpt':
					$postarr['post_excerpt'] = $value;
					break;
				case 'status':
					$postarr['post_status'] = $value;
					break;
				case 'categories':
				case 'tags':
					break; // after the post update, below
				case 'address':
					foreach ( get_object_vars( $value ) as $sub => $sub_value ) {
						self::set_post_meta( $id, $meta['address'] . '_' . $sub, $sub_value );
					}
					break;
				case 'start_gmt':
				case 'end_gmt':
				case 'send_at_gmt':
					self::set_post_meta( $id, $meta[ $key ], null === $value ? null : self::parse_gmt( $value ) );
					break;
				default:
					self::set_post_meta( $id, $meta[ $key ], $value );
			}
		}
		// Always an update of the post itself: it bumps post_modified_gmt and fires save_post.
		$result = wp_update_post( wp_slash( $postarr ), true );
		if ( is_wp_error( $result ) ) {
			return $result;
		}
		if ( isset( $values['categories'] ) ) {
			$term_ids = array();
			foreach ( $values['categories'] as $name ) {
				// By name, not term_exists(): that one reads a numeric name ("2024") as a term id.
				$term = get_term_by( 'name', $name, 'category' );
				if ( $term ) {
					$term_ids[] = (int) $term->term_id;
					continue;
				}
				$term = wp_insert_term( wp_slash( $name ), 'category' );
				if ( is_wp_error( $term ) ) {
					return $term;
				}
				$term_ids[] = (int) $term['term_id'];
			}
			wp_set_post_categories( $id, $term_ids ); // [] => the default category (WordPress)
		}
		if ( isset( $values['tags'] ) ) {
			$result = wp_set_post_terms( $id, wp_slash( $values['tags'] ), 'post_tag' );
			if ( is_wp_error( $result ) ) {
				return $result;
			}
		}
		clean_post_cache( $id );
		return true;
	}

	private static function set_post_meta( $id, $key, $value ) {
		if ( null === $value || '' === $value ) {
			delete_post_meta( $id, $key );
		} else {
			update_post_meta( $id, $key, wp_slash( is_int( $value ) ? (string) $value : $value ) );
		}
	}

	private static function apply_member( $id, $values ) {
		$userdata = array( 'ID' => $id );
		foreach ( $values as $key => $value ) {
			if ( 'display_name' === $key ) {
				$userdata['display_name'] = $value;
			} elseif ( 'address' === $key ) {
				foreach ( get_object_vars( $value ) as $sub => $sub_value ) {
					self::set_user_meta( $id, '_association_address_' . $sub, $sub_value );
				}
			} else {
				self::set_user_meta( $id, self::MEMBER_META[ $key ], $value );
			}
		}
		// Always fires profile_update (and so bumps the member's modified_gmt).
		$result = wp_update_user( wp_slash( $userdata ) );
		if ( is_wp_error( $result ) ) {
			return $result;
		}
		AA_Content::touch_member( $id );
		clean_user_cache( $id );
		return true;
	}

	private static function set_user_meta( $id, $key, $value ) {
		if ( null === $value || '' === $value ) {
			delete_user_meta( $id, $key );
		} else {
			update_user_meta( $id, $key, wp_slash( $value ) );
		}
	}
}
