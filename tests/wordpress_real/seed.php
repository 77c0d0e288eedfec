<?php
/**
 * Seeds the real test site with content of every entity type, through WordPress APIs only (so
 * the plugin's hooks run as they would for an editor), and prints a JSON manifest of the ids.
 * Runs inside the harness's CLI bootstrap (wp-load.php loaded, current user = admin).
 */

require_once ABSPATH . 'wp-admin/includes/image.php';

$manifest = array(
	'articles' => array(),
	'members'  => array(),
);

function aa_seed_fail( $what, $result ) {
	if ( is_wp_error( $result ) || ! $result ) {
		fwrite( STDERR, "seeding {$what} failed: " . ( is_wp_error( $result ) ? $result->get_error_message() : 'no id' ) );
		exit( 1 );
	}
	return $result;
}

function aa_seed_attachment( $filename, $bytes, $mime, $extra_meta = array() ) {
	$upload = wp_upload_bits( $filename, null, $bytes, '2024/11' );
	if ( ! empty( $upload['error'] ) ) {
		aa_seed_fail( $filename, new WP_Error( 'upload', $upload['error'] ) );
	}
	$id = aa_seed_fail(
		$filename,
		wp_insert_attachment(
			array(
				'post_mime_type' => $mime,
				'post_title'     => pathinfo( $filename, PATHINFO_FILENAME ),
				'post_status'    => 'inherit',
			),
			$upload['file']
		)
	);
	wp_update_attachment_metadata(
		$id,
		array_merge(
			array(
				'file'     => _wp_relative_upload_path( $upload['file'] ),
				'filesize' => strlen( $bytes ),
			),
			$extra_meta
		)
	);
	return array(
		'id'   => $id,
		'url'  => $upload['url'],
		'size' => strlen( $bytes ),
		'name' => wp_basename( $upload['file'] ),
	);
}

function aa_seed_post( $args, $meta = array() ) {
	$args = array_merge(
		array(
			'post_status' => 'publish',
			'post_author' => get_current_user_id(),
		),
		$args
	);
	$id   = aa_seed_fail( $args['post_title'] ?? 'post', wp_insert_post( wp_slash( $args ), true ) );
	foreach ( $meta as $key => $value ) {
		update_post_meta( $id, $key, wp_slash( $value ) );
	}
	return $id;
}

// --- media ---------------------------------------------------------------------------------
$png   = base64_decode( 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==' );
$image = aa_seed_attachment(
	'cafe-menu.png',
	$png,
	'image/png',
	array(
		'width'  => 1,
		'height' => 1,
		'sizes'  => array(),
	)
);
$logo  = aa_seed_attachment(
	'mueller-logo.png',
	$png,
	'image/png',
	array(
		'width'  => 1,
		'height' => 1,
		'sizes'  => array(),
	)
);
$pdf   = aa_seed_attachment( 'board-minutes-2024-11.pdf', "%PDF-1.4\n% Association test document\n%%EOF\n", 'application/pdf' );
$manifest['image'] = $image;
$manifest['logo']  = $logo;
$manifest['pdf']   = $pdf;

// --- articles ------------------------------------------------------------------------------
$news = aa_seed_fail( 'category', wp_insert_term( 'News', 'category' ) );
$tom  = aa_seed_fail( 'category', wp_insert_term( 'Tom & Jerry', 'category' ) );

$hello                       = get_page_by_path( 'hello-world', OBJECT, 'post' );
$manifest['articles']['hello'] = $hello ? $hello->ID : null;

$welcome = aa_seed_post(
	array(
		'post_title'    => 'Welcome to the association',
		'post_content'  => "<!-- wp:paragraph -->\n<p>Our first article, with <strong>bold</strong> news.</p>\n<!-- /wp:paragraph -->",
		'post_excerpt'  => 'A short welcome.',
		'post_date_gmt' => '2024-11-29 20:00:00',
		'post_date'     => '2024-11-29 21:00:00',
	)
);
wp_set_post_categories( $welcome, array( $news['term_id'], $tom['term_id'] ) );
wp_set_post_terms( $welcome, array( 'webhooks', 'sync' ), 'post_tag' );
set_post_thumbnail( $welcome, $image['id'] );
$manifest['articles']['welcome'] = $welcome;

$manifest['articles']['quoted'] = aa_seed_post(
	array(
		'post_title'   => 'Tom & Jerry\'s "quoted" title',
		'post_content' => '<p>Cats &amp; mice.</p>',
	)
);
$manifest['articles']['draft']  = aa_seed_post(
	array(
		'post_title'   => 'Unfinished draft',
		'post_content' => '<p>Not ready.</p>',
		'post_status'  => 'draft',
	)
);
$manifest['articles']['protected'] = aa_seed_post(
	array(
		'post_title'    => 'Board only',
		'post_content'  => '<p>Members only text.</p>',
		'post_password' => 'secret-word',
	)
);
for ( $i = 1; $i <= 20; $i++ ) {
	$manifest['articles'][ 'filler' . $i ] = aa_seed_post(
		array(
			'post_title'   => sprintf( 'Filler article %02d', $i ),
			'post_content' => sprintf( '<p>Filler body %02d.</p>', $i ),
		)
	);
}
// An auto-draft and a trashed post are never served.
$manifest['auto_draft'] = aa_seed_post(
	array(
		'post_title'  => 'Auto Draft',
		'post_status' => 'auto-draft',
	)
);

// --- members -------------------------------------------------------------------------------
function aa_seed_user( $login, $role, $data = array(), $meta = array() ) {
	$id = aa_seed_fail(
		$login,
		wp_insert_user(
			wp_slash(
				array_merge(
					array(
						'user_login' => $login,
						'user_email' => $login . '@example.net',
						'user_pass'  => wp_generate_password( 20 ),
						'role'       => $role,
					),
					$data
				)
			)
		)
	);
	foreach ( $meta as $key => $value ) {
		update_user_meta( $id, $key, wp_slash( $value ) );
	}
	return $id;
}

$manifest['members']['admin'] = get_user_by( 'login', 'admin' )->ID;
$manifest['members']['alice'] = aa_seed_user(
	'alice.muller',
	'member',
	array(
		'first_name'   => 'Alice',
		'last_name'    => 'Müller',
		'display_name' => 'Alice Müller',
	),
	array(
		'_association_phone'            => '+49 30 1234567',
		'_association_job_title'        => 'Head of Compliance',
		'_association_company'          => 'Müller & Söhne GmbH',
		'_association_address_street'   => 'Hauptstraße 5',
		'_association_address_city'     => 'Berlin',
		'_association_address_postcode' => '01067',
		'_association_address_country'  => 'DE',
		'_association_certifications'   => array( 'Certified Safety Officer', 'ISO 9001 Lead Auditor' ),
	)
);
$manifest['members']['bob']   = aa_seed_user( 'bob.pending', 'pending_member', array( 'first_name' => 'Bob' ) );
$manifest['members']['carol'] = aa_seed_user( 'carol.lapsed', 'subscriber', array( 'display_name' => 'Carol Lapsed' ) );
( new WP_User( $manifest['members']['carol'] ) )->add_role( 'lapsed_member' );
$manifest['members']['dave'] = aa_seed_user( 'dave.subscriber', 'subscriber' );

// --- events --------------------------------------------------------------------------------
$manifest['events'] = array(
	'agm'      => aa_seed_post(
		array(
			'post_type'    => 'event',
			'post_title'   => 'Annual General Meeting 2025',
			'post_content' => "<p>Agenda, elections and the treasurer's report.</p>",
		),
		array(
			'_association_event_start_gmt'        => '2025-03-14 09:00:00',
			'_association_event_end_gmt'          => '2025-03-14 16:30:00',
			'_association_event_timezone'         => 'Europe/Berlin',
			'_association_event_venue'            => 'Congress Centre, Hall A',
			'_association_event_address_street'   => 'Messedamm 22',
			'_association_event_address_city'     => 'Berlin',
			'_association_event_address_postcode' => '14055',
			'_association_event_address_country'  => 'DE',
			'_association_event_capacity'         => '250',
			'_association_event_registration_url' => 'https://association.example.org/events/agm-2025/register/',
		)
	),
	'workshop' => aa_seed_post(
		array(
			'post_type'    => 'event',
			'post_title'   => 'Ladder safety workshop',
			'post_content' => '<p>Hands-on.</p>',
		),
		array( '_association_event_start_gmt' => '2025-05-02 13:00:00' )
	),
);

// --- documents -----------------------------------------------------------------------------
$governance = aa_seed_fail( 'folder', wp_insert_term( 'Governance', 'folder' ) );
$minutes    = aa_seed_fail( 'folder', wp_insert_term( 'Minutes', 'folder', array( 'parent' => $governance['term_id'] ) ) );
$year       = aa_seed_fail( 'folder', wp_insert_term( '2024', 'folder', array( 'parent' => $minutes['term_id'] ) ) );
$manifest['documents'] = array(
	'minutes' => aa_seed_post(
		array(
			'post_type'  => 'document',
			'post_title' => 'Board minutes - November 2024',
		),
		array(
			'_association_file_id'      => (string) $pdf['id'],
			'_association_access_level' => 'members',
		)
	),
	'policy'  => aa_seed_post(
		array(
			'post_type'  => 'policy',
			'post_title' => 'Privacy policy',
		),
		array( '_association_access_level' => 'public' )
	),
	'recall'  => aa_seed_post(
		array(
			'post_type'  => 'recall',
			'post_title' => 'Recall: ladder X200',
		)
	),
);
wp_set_object_terms( $manifest['documents']['minutes'], array( (int) $year['term_id'], (int) $governance['term_id'] ), 'folder' );

// --- conference, company, notification ------------------------------------------------------
$manifest['conferences'] = array(
	'summit' => aa_seed_post(
		array(
			'post_type'    => 'conference',
			'post_title'   => 'European Safety Summit 2025',
			'post_content' => '<p>Three days of talks and workshops.</p>',
		),
		array(
			'_association_conference_start_date' => '2025-06-10',
			'_association_conference_end_date'   => '2025-06-12',
			'_association_conference_venue'      => 'RAI Amsterdam',
			'_association_conference_city'       => 'Amsterdam',
			'_association_conference_country'    => 'NL',
			'_association_conference_website'    => 'https://safetysummit.example.eu/',
		)
	),
);
$company = aa_seed_post(
	array(
		'post_type'    => 'company',
		'post_title'   => 'Müller & Söhne GmbH',
		'post_content' => '<p>Family-owned manufacturer since 1952.</p>',
	),
	array(
		'_association_company_website'  => 'https://mueller-soehne.example.de/',
		'_association_company_industry' => 'Industrial safety equipment',
	)
);
set_post_thumbnail( $company, $logo['id'] );
$manifest['companies']     = array( 'mueller' => $company );
$manifest['notifications'] = array(
	'recall' => aa_seed_post(
		array(
			'post_type'    => 'notification',
			'post_title'   => 'Product recall: ladder X200',
			'post_content' => '<p>Stop using ladder model X200 immediately.</p>',
		),
		array(
			'_association_notification_audience'    => 'members',
			'_association_notification_send_at_gmt' => '2024-11-30 08:00:00',
			'_association_notification_priority'    => 'urgent',
		)
	),
);

echo wp_json_encode( $manifest );
